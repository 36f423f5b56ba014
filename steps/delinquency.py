"""The ledger step: advance the loan ledger to a business date and publish its delinquency
reports (IO at the edge; the ledger's SQL is in transforms.ledger)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

from creditflow.execution import executor_for
from creditflow.publish import PublishedPartition, publish_partition
from creditflow.settings import Settings
from creditflow.transforms.ledger import (
    LEDGER,
    LedgerResult,
    clear_date,
    ensure_ledger_schema,
    previous_step,
    store_state,
    window_of,
)
from creditflow.transforms.reports import REPORTS, report
from creditflow.warehouse import open_warehouse, transaction


@dataclass
class DelinquencyResult:
    ledger: LedgerResult
    published: list[PublishedPartition] = field(default_factory=list)

    @property
    def rows(self) -> dict[str, int]:
        return {p.table: p.rows for p in self.published}


def run_ledger(
    settings: Settings, business_date: date, *, run_id: str | None = None
) -> DelinquencyResult:
    """Advance the ledger to ``business_date`` in one transaction (the state computed where
    the executor runs it) and publish every report partition for it."""
    run_id = run_id or f"ledger-{business_date.isoformat()}"
    t0 = time.perf_counter()
    with (
        open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con,
        executor_for(settings) as executor,
    ):
        ensure_ledger_schema(con)
        prev = previous_step(con, business_date)
        with transaction(con):
            # a rerun of the date replaces what it wrote before, and nothing else
            clear_date(con, business_date)
            state = executor.run(con, LEDGER, business_date, **window_of(prev))
            step = store_state(con, business_date, prev, run_id, state, t0)
        result = DelinquencyResult(step)
        for name in REPORTS:
            rows = report(con, name, business_date, run_id)
            result.published.append(
                publish_partition(
                    rows.select(*[c for c in rows.columns if c != "dt"]),
                    settings.published_dir,
                    name,
                    business_date,
                )
            )
    return result

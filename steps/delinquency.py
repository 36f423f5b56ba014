"""The ledger step: advance the loan ledger to a business date and publish its delinquency
reports (IO at the edge; the ledger's SQL is in transforms.ledger)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from creditflow.execution import executor_for
from creditflow.publish import PublishedPartition, publish_partition
from creditflow.settings import Settings
from creditflow.transforms.ledger import LedgerResult, ledger_step
from creditflow.transforms.reports import REPORTS, report
from creditflow.warehouse import open_warehouse


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
    with (
        open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con,
        executor_for(settings) as executor,
    ):
        step = ledger_step(con, business_date, run_id=run_id, run=executor.run)
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

"""Run the ledger for a business date and publish its delinquency reports (IO at the edge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from creditflow.catalog import PublishedPartition, publish_partition
from creditflow.execution import client_for
from creditflow.settings import Settings
from creditflow.shard_ledger import sharded_ledger_step
from creditflow.transforms.ledger import LedgerResult, ensure_ledger_schema, ledger_step
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
    """Advance the ledger to ``business_date`` and publish every report partition for it;
    in loan shards on the cluster when the settings say so (creditflow.shard_ledger)."""
    run_id = run_id or f"ledger-{business_date.isoformat()}"
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        ensure_ledger_schema(con)
        if settings.distributed:
            with client_for(settings) as client:
                assert client is not None
                step = sharded_ledger_step(
                    con,
                    business_date,
                    run_id=run_id,
                    client=client,
                    shards=settings.shards,
                    root=settings.shard_dir,
                )
        else:
            step = ledger_step(con, business_date, run_id=run_id)
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

"""The ledger step in loan shards on a Dask cluster: the same SQL, one shard per task.

Every statement of ``transforms.ledger.ledger_step`` is per loan, so the step splits by a
hash of loan_id without changing a value. The driver (holding the warehouse) writes each
shard's inputs once: the previous state, the window's instalments, loans and repayment
events (a REVERSAL goes to the shard of the repayment it undoes, since it carries no
loan_id), and the schedules and archived rows those loans need. Each task runs
``ledger_step`` itself on an in-memory DuckDB holding only its shard and writes the date's
state and newly archived loans as Parquet. The driver then applies the shards' rows to the
warehouse in one transaction, with the same bookkeeping as the local step. The ledger stays
in date order: a date starts from the one before.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from creditflow.execution import log_shards, worker_threads
from creditflow.shards import Slice, export_slices, load_slices, worker_connection
from creditflow.transforms.ledger import (
    EARLIEST,
    LedgerResult,
    clear_date,
    ensure_ledger_schema,
    ledger_step,
    previous_step,
    record_step,
    refresh_sources,
)
from creditflow.warehouse import ensure_schema, transaction

if TYPE_CHECKING:
    from distributed import Client

# $after (exclusive) .. $d (inclusive) is the step's window; $prev the previous state's date.
_WINDOW_REPAYMENTS = """select txn_id, loan_id from transactions
    where dt > $after and dt <= $d and txn_type = 'REPAYMENT' and status = 'SUCCESS'"""
_REVERSALS = """select reverses_txn_id from transactions
    where dt > $after and dt <= $d and txn_type = 'REVERSAL' and status = 'SUCCESS'"""
_TOUCHED = "select loan_id from installments where dt > $after and dt <= $d"
# loans something happened to in the window: the archived ones among them can come back
_EVENT_LOANS = f"""select loan_id from ({_WINDOW_REPAYMENTS})
    union select loan_id from repayments where txn_id in ({_REVERSALS})"""

SLICES = (
    Slice("loan_daily", "select *, loan_id as shard_key from loan_daily where dt = $prev"),
    Slice(
        "loan_archive",
        f"""select *, loan_id as shard_key from loan_archive
            where archived_on <> $d and loan_id in ({_EVENT_LOANS})""",
    ),
    Slice(
        "schedule",
        f"""select *, loan_id as shard_key from schedule
            where loan_id in (select loan_id from loan_daily where dt = $prev)
               or loan_id in (select loan_id from loans where dt > $after and dt <= $d)
               or loan_id in ({_EVENT_LOANS})""",
    ),
    Slice(
        "installments",
        f"select *, loan_id as shard_key from installments where dt <= $d and loan_id in ({_TOUCHED})",
    ),
    Slice(
        "loans",
        f"""select *, loan_id as shard_key from loans
            where dt <= $d and ((dt > $after) or loan_id in ({_TOUCHED}))""",
    ),
    # the repayments that the window's reversals undo, wherever they were delivered
    Slice(
        "repayments",
        f"select *, loan_id as shard_key from repayments where txn_id in ({_REVERSALS})",
    ),
    Slice(
        "transactions",
        f"""select t.*,
                   case when t.txn_type = 'REVERSAL' then coalesce(target.loan_id, '')
                        else t.loan_id end as shard_key
            from transactions as t
            left join (
                select txn_id, any_value(loan_id) as loan_id
                from (select txn_id, loan_id from repayments
                      union all {_WINDOW_REPAYMENTS})
                group by txn_id
            ) as target on t.txn_type = 'REVERSAL' and target.txn_id = t.reverses_txn_id
            where t.dt > $after and t.dt <= $d and t.txn_type in ('REPAYMENT', 'REVERSAL')""",
    ),
)
TABLES = tuple(s.table for s in SLICES)


@dataclass(frozen=True)
class LedgerShardJob:
    """One shard's ledger step: plain values and paths, so it pickles to any worker."""

    shard: int
    business_date: date
    previous_date: date | None
    run_id: str
    inputs: Path
    outputs: Path


def ledger_shard(job: LedgerShardJob) -> tuple[int, float]:
    """Run the ledger step on one shard (on a Dask worker); write its state and archive.
    Returns the shard's active loans and seconds."""
    t0 = time.perf_counter()
    con = worker_connection(worker_threads())
    try:
        ensure_schema(con)
        ensure_ledger_schema(con)
        load_slices(con, job.inputs, TABLES, job.shard)
        if job.previous_date is not None:
            # the step reads the previous processed date from ledger_runs
            con.execute(
                "insert into ledger_runs values ($p, null, 'previous', 0, 0, 0, 0)",
                {"p": job.previous_date},
            )
        step = ledger_step(con, job.business_date, run_id=job.run_id)
        for table, where in (("loan_daily", "dt = $d"), ("loan_archive", "archived_on = $d")):
            path = job.outputs / table / f"shard={job.shard}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            quoted = str(path).replace("'", "''")
            con.execute(
                f"copy (select * from {table} where {where}) to '{quoted}' "
                "(format parquet, compression zstd)",
                {"d": job.business_date},
            )
        return step.active_loans, time.perf_counter() - t0
    finally:
        con.close()


def sharded_ledger_step(
    con: duckdb.DuckDBPyConnection,
    business_date: date,
    *,
    run_id: str,
    client: Client,
    shards: int,
    root: Path,
) -> LedgerResult:
    """``ledger_step`` with the per-loan work on the cluster; same rows, same bookkeeping."""
    t0 = time.perf_counter()
    ensure_ledger_schema(con)
    prev = previous_step(con, business_date)
    after = prev or EARLIEST
    work = root / "ledger" / f"dt={business_date.isoformat()}"
    export_slices(
        con,
        work / "in",
        SLICES,
        {"after": after, "d": business_date, "prev": prev},
        shards,
    )
    jobs = [
        LedgerShardJob(k, business_date, prev, run_id, work / "in", work / "out")
        for k in range(shards)
    ]
    done = client.gather(client.map(ledger_shard, jobs, pure=False))
    log_shards("ledger", [n for n, _ in done], [s for _, s in done])
    try:
        with transaction(con):
            clear_date(con, business_date)
            refresh_sources(con, after, business_date)
            for table in ("loan_daily", "loan_archive"):
                files = sorted(str(p) for p in (work / "out" / table).glob("shard=*.parquet"))
                con.execute(
                    f"insert into {table} by name select * from read_parquet($files, hive_partitioning = false)",
                    {"files": files},
                )
            result = record_step(con, business_date, prev, run_id, t0)
    finally:
        con.execute("drop table if exists _touched")
    # the inputs were a copy for this step; the shards' state files stay (docs/scale_out.md)
    shutil.rmtree(work / "in", ignore_errors=True)
    return result

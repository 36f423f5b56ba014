"""The shard store: per-date, per-shard Parquet copies of the warehouse's dated history.

Tonight's features read 90 days of behaviour and repayment events and 180 days of ledger
state. Exporting those windows from the warehouse every night would make the driver scan
and write more than the local run computes. Instead each date is copied once, split by a
hash of customer_id, to ``<shard_root>/store/<table>/dt=<date>/shard=<k>/*.parquet``, and a
shard's feature task reads its own files of the dates in its window. So the driver's
nightly share of this work is one new date per table, whatever the history.

A date's copy is valid while its version matches the warehouse's: for delivered tables the
date's load id (a content address of the delivery and the rules, replaced by a redelivery),
for the ledger the version its step recorded in ``state_versions``. A ``_version`` file
(shard count and version) is written last; a missing or different one is copied again. A
store built for another shard count is therefore rebuilt, date by date, as nights need it.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb

from creditflow.execution.shards import shard_sql
from creditflow.transforms.inputs import DatedTable

VERSION_FILE = "_version"


def _versions(con: duckdb.DuckDBPyConnection, table: DatedTable, d: date) -> dict[date, str]:
    """The warehouse's version of each date of the table's window that holds data."""
    first = d - timedelta(days=table.days - 1)
    if table.table == "loan_daily":
        # a ledger built before versions were recorded gets one now, once per date
        con.execute(
            """insert into state_versions
               select 'loan_daily', dt, uuid()::VARCHAR from ledger_runs
               where dt between $first and $d and dt not in (
                   select dt from state_versions where table_name = 'loan_daily')""",
            {"first": first, "d": d},
        )
        rows = con.execute(
            """select dt, version from state_versions
               where table_name = 'loan_daily' and dt between $first and $d""",
            {"first": first, "d": d},
        ).fetchall()
    else:
        rows = con.execute(
            """select business_date, arg_max(load_id, loaded_at) from loads
               where business_date between $first and $d group by business_date""",
            {"first": first, "d": d},
        ).fetchall()
    return {r[0]: str(r[1]) for r in rows}


def date_dir(root: Path, table: str, dt: date) -> Path:
    return root / table / f"dt={dt.isoformat()}"


Valid = dict[str, tuple[date, ...]]


def sync(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    d: date,
    shards: int,
    dated: tuple[DatedTable, ...],
) -> tuple[Valid, int]:
    """Copy every date of the ``dated`` windows of ``d`` whose copy is missing or stale. Returns the
    dates each table holds data for (the only ones a task may read: a store outlives nothing
    it was not checked against) and how many table-dates were copied (one per table on an
    ordinary night)."""
    copied = 0
    valid: Valid = {}
    for table in dated:
        versions = _versions(con, table, d)
        valid[table.table] = tuple(sorted(versions))
        for dt, version in sorted(versions.items()):
            folder = date_dir(root, table.table, dt)
            expected = f"{shards}:{version}"
            marker = folder / VERSION_FILE
            if marker.is_file() and marker.read_text(encoding="utf-8") == expected:
                continue
            staging = folder.with_name(f".tmp-{folder.name}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"create or replace temp table _dated as {table.query}", {"dt": dt})
            try:
                staging.mkdir()
                quoted = str(staging).replace("'", "''")
                con.execute(
                    f"copy (select * exclude (shard_key), {shard_sql('shard_key', shards)} as shard "
                    f"from _dated) to '{quoted}' "
                    "(format parquet, partition_by (shard), compression zstd, overwrite_or_ignore)"
                )
            finally:
                con.execute("drop table if exists _dated")
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
            marker.write_text(expected, encoding="utf-8")  # last: the copy is complete
            copied += 1
    return valid, copied


def load_dated(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    valid: Valid,
    shard: int,
    dated: tuple[DatedTable, ...],
) -> None:
    """Fill ``con``'s dated tables with the shard's rows of the ``valid`` dates (on a Dask
    worker)."""
    for table in dated:
        files = [
            str(p)
            for dt in valid.get(table.table, ())
            for p in sorted((date_dir(root, table.table, dt) / f"shard={shard}").glob("*.parquet"))
        ]
        if files:
            con.execute(
                f"insert into {table.table} by name "
                "select * from read_parquet($files, hive_partitioning = false)",
                {"files": files},
            )

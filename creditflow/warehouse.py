"""The DuckDB warehouse: one file, one writer, a schema created on first use.

DuckDB lets one process hold a database file for writing. A second creditflow process
gets ``WarehouseBusy`` at once (or after ``wait_seconds``) instead of DuckDB's raw lock
error, and never a half-written file: every load is one transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from creditflow.contract import BUSINESS_TZ, EXTRACTS, Extract

SCHEMA_VERSION = 1  # the baseline; later versions are creditflow.migrations
T = TypeVar("T")


class WarehouseBusy(Exception):
    """Another process holds the warehouse file."""


def _lock_holder(message: str) -> str:
    match = re.search(r"PID (\d+)", message)
    return f" (held by process {match.group(1)})" if match else ""


def _retry_lock(action: Callable[[], T], path: Path, wait_seconds: float) -> T:
    """Run ``action``; while the file is locked by another process, retry until ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return action()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"warehouse {path} is in use by another creditflow run{_lock_holder(str(exc))}; "
                    "DuckDB allows one writer. Wait for it to finish, or set a lock wait time "
                    "(CREDITFLOW_LOCK_WAIT_SECONDS)."
                ) from exc
            time.sleep(0.5)


def connect(
    path: Path, *, read_only: bool = False, wait_seconds: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; raise ``WarehouseBusy`` if another process holds it past ``wait_seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _retry_lock(lambda: duckdb.connect(str(path), read_only=read_only), path, wait_seconds)
    use_business_time_zone(con)
    return con


def use_business_time_zone(con: duckdb.DuckDBPyConnection) -> None:
    """Dates of timestamps are Asia/Shanghai business dates in every connection's SQL."""
    con.execute(f"set TimeZone = '{BUSINESS_TZ}'")


def attach(
    con: duckdb.DuckDBPyConnection, path: Path, alias: str, *, wait_seconds: float = 0.0
) -> None:
    """ATTACH the warehouse file to another database under ``alias``, with the same lock handling."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # ATTACH takes no parameters; the path is configuration (never file content), quoted here
    quoted = str(path).replace("'", "''")
    _retry_lock(lambda: con.execute(f"attach '{quoted}' as {alias}"), path, wait_seconds)


@contextmanager
def open_warehouse(
    path: Path, *, read_only: bool = False, wait_seconds: float = 0.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only, wait_seconds=wait_seconds)
    try:
        if not read_only:
            ensure_schema(con)
        yield con
    finally:
        con.close()


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None) -> object:
    """The first value of a query's result. Always fetched fully: DuckDB 2.0 keeps a half-read
    result (``fetchone``) open and refuses the connection's next relation query."""
    rows = con.execute(query, params or {}).fetchall()
    return rows[0][0] if rows else None


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows in a table or view whose name the code chose (never one read from a file)."""
    return int(scalar(con, f"select count(*) from {table}"))  # type: ignore[call-overload]


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the table exists (read-only connections cannot create it to find out)."""
    return bool(
        con.sql(
            "select 1 from duckdb_tables() where table_name = $name", params={"name": name}
        ).fetchall()
    )


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All statements inside commit together or not at all."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def _extract_ddl(extract: Extract, schema: str) -> str:
    cols = ",\n    ".join(f"{c.name} {c.kind.duckdb}" for c in extract.columns)
    extra = ",\n    is_late BOOLEAN" if extract.name == "transactions" else ""
    return f"""
create table if not exists {schema}.{extract.name} (
    {cols}{extra},
    dt DATE not null,  -- business date of the delivery that brought the row
    load_id VARCHAR not null
)"""


def ensure_schema(con: duckdb.DuckDBPyConnection, schema: str = "main") -> None:
    """Create the warehouse tables and views if they are missing (idempotent)."""
    statements = [_extract_ddl(e, schema) for e in EXTRACTS]
    statements += [
        f"""create table if not exists {schema}.loads (
            load_id VARCHAR primary key,  -- content address: date, file checksums, rules version
            business_date DATE not null,
            run_id VARCHAR not null,
            rules_version VARCHAR not null,
            code_version VARCHAR not null,
            manifest_generated_at VARCHAR,
            loaded_at TIMESTAMPTZ not null,  -- wall clock, for the audit trail only
            format VARCHAR not null,
            data_docs VARCHAR
        )""",
        f"""create table if not exists {schema}.load_files (
            load_id VARCHAR not null,
            business_date DATE not null,
            extract VARCHAR not null,
            file_name VARCHAR not null,
            sha256 VARCHAR not null,
            bytes BIGINT not null,
            manifest_rows BIGINT not null,
            rows_loaded BIGINT not null,
            rows_quarantined BIGINT not null
        )""",
        f"""create table if not exists {schema}.load_attempts (
            business_date DATE not null,
            run_id VARCHAR not null,
            attempted_at TIMESTAMPTZ not null,
            status VARCHAR not null,  -- LOADED, UNCHANGED or FAILED
            error VARCHAR
        )""",
        f"""create table if not exists {schema}.quarantine (
            dt DATE not null,
            extract VARCHAR not null,
            load_id VARCHAR not null,
            source_row BIGINT,  -- 1-based data row in the delivered file
            line BIGINT,  -- physical line in a CSV file (header is line 1)
            natural_key VARCHAR,
            failed_rules VARCHAR[] not null,
            record VARCHAR  -- the row as delivered (JSON), or the raw CSV line if unparseable
        )""",
        f"""create table if not exists {schema}.data_quality (
            dt DATE not null,
            extract VARCHAR not null,
            "check" VARCHAR not null,
            success BOOLEAN not null,
            rows_checked BIGINT not null,
            rows_failed BIGINT not null,
            rows_quarantined BIGINT not null,
            run_id VARCHAR not null
        )""",
        f"""create table if not exists {schema}.schema_info (version INTEGER not null)""",
        # Every delivered customer record is kept; validity runs from the date it was delivered
        # until the next delivered version: point-in-time features read "as known then".
        f"""create or replace view {schema}.customer_versions as
            select *, dt as valid_from,
                   lead(dt) over (partition by customer_id order by dt, updated_at) as valid_to
            from {schema}.customers""",
        f"""create or replace view {schema}.customers_current as
            select * exclude (valid_from, valid_to) from {schema}.customer_versions where valid_to is null""",
    ]
    for sql in statements:
        con.execute(sql)
    if scalar(con, f"select count(*) from {schema}.schema_info") == 0:
        con.execute(f"insert into {schema}.schema_info values ({SCHEMA_VERSION})")

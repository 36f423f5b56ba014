"""Run records: the run lock, run ids, the ``runs`` table and its published listing.

A run id is a content address, like a git commit: the hash of the business date, the
delivery's file checksums, the rules, code and policy versions, the champion in force and
the previous date's run id. The same inputs and code give the same run id and the same rows,
so a rerun of an unchanged date republishes byte-identical files; a changed input anywhere
upstream gives every later date a new run id, which is how a rerun lists the later dates
whose inputs changed.

The lock is an ``flock`` on a file next to the warehouse, held for a whole run (or
backfill): DuckDB allows one writer, and a run opens the warehouse several times, so the
file lock is what keeps a second run out between steps.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from creditflow.migrations import migrate
from creditflow.publish import PublishedPartition, publish_partition
from creditflow.settings import Settings
from creditflow.warehouse import WarehouseBusy, open_warehouse

RUNS_DDL = """
create table if not exists runs (
    run_id VARCHAR not null,
    run_date DATE not null,
    attempt INTEGER not null,        -- 1, 2, ... per run_date: every attempt is kept
    flow_run_id VARCHAR,             -- the Prefect flow run, to find its logs and artifacts
    trigger VARCHAR not null,        -- schedule, manual, backfill, demo
    status VARCHAR not null,         -- RUNNING, SUCCESS, FAILED
    started_at TIMESTAMPTZ not null, -- wall clock, for the audit trail only
    finished_at TIMESTAMPTZ,
    code_version VARCHAR not null,
    previous_run_id VARCHAR,
    load_id VARCHAR,
    input_files STRUCT(file VARCHAR, sha256 VARCHAR, rows BIGINT)[],
    model_version VARCHAR,
    policy_version VARCHAR,
    row_counts VARCHAR,              -- JSON: step -> table -> rows
    durations VARCHAR,               -- JSON: step -> seconds
    error VARCHAR
)"""


@dataclass
class RunRecord:
    run_id: str
    run_date: date
    trigger: str
    code_version: str
    previous_run_id: str | None
    load_id: str | None
    input_files: list[dict[str, Any]]
    policy_version: str
    flow_run_id: str | None = None
    model_version: str | None = None
    status: str = "RUNNING"
    row_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    attempt: int = 0


def derive_run_id(
    run_date: date,
    fingerprint: dict[str, str],
    versions: dict[str, str | None],
    previous_run_id: str | None,
) -> str:
    payload = json.dumps(
        {
            "date": run_date.isoformat(),
            "files": fingerprint,
            "versions": versions,
            "previous": previous_run_id,
        },
        sort_keys=True,
    )
    return f"r{run_date:%Y%m%d}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def ensure_runs_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RUNS_DDL)


class PreviousDateFailed(RuntimeError):
    """The date before failed on its last attempt: its state is not one to build on."""


def previous_run(con: duckdb.DuckDBPyConnection, run_date: date) -> str | None:
    """The run id of the last attempt of the latest date run before ``run_date`` (the state
    this night builds on); raises when that attempt failed."""
    rows = con.execute(
        """select run_date, run_id, status from runs where run_date < $d
           order by run_date desc, attempt desc limit 1""",
        {"d": run_date},
    ).fetchall()
    if not rows:
        return None
    previous_date, run_id, status = rows[0]
    if status != "SUCCESS":
        raise PreviousDateFailed(
            f"the last run of {previous_date} ({run_id}) ended {status}: rerun {previous_date} "
            f"first (creditflow run --date {previous_date}), since {run_date} builds on it"
        )
    return run_id


def close_interrupted(con: duckdb.DuckDBPyConnection, by: str) -> None:
    """Called under the run lock, so a RUNNING attempt belongs to a process that died (killed,
    out of memory, power): it is closed as FAILED."""
    con.execute(
        """update runs set status = 'FAILED', finished_at = now(),
               error = 'interrupted: the process stopped before the run finished (found by ' || $by || ')'
           where status = 'RUNNING'""",
        {"by": by},
    )


def start(con: duckdb.DuckDBPyConnection, record: RunRecord) -> None:
    """Record the attempt (under the run lock)."""
    ensure_runs_schema(con)
    close_interrupted(con, record.run_id)
    rows = con.execute(
        "select coalesce(max(attempt), 0) + 1 from runs where run_date = $d", {"d": record.run_date}
    ).fetchall()
    record.attempt = int(rows[0][0])
    con.execute(
        """insert into runs values ($run_id, $run_date, $attempt, $flow_run_id, $trigger, 'RUNNING',
               now(), null, $code, $prev, $load, $files, null, $policy, null, null, null)""",
        {
            "run_id": record.run_id,
            "run_date": record.run_date,
            "attempt": record.attempt,
            "flow_run_id": record.flow_run_id,
            "trigger": record.trigger,
            "code": record.code_version,
            "prev": record.previous_run_id,
            "load": record.load_id,
            "files": record.input_files,
            "policy": record.policy_version,
        },
    )


def finish(con: duckdb.DuckDBPyConnection, record: RunRecord) -> None:
    con.execute(
        """update runs set status = $status, finished_at = now(), model_version = $model,
               row_counts = $rows, durations = $durations, error = $error
           where run_date = $d and attempt = $attempt""",
        {
            "status": record.status,
            "model": record.model_version,
            "rows": json.dumps(record.row_counts, sort_keys=True),
            "durations": json.dumps({k: round(v, 3) for k, v in record.durations.items()}),
            "error": record.error,
            "d": record.run_date,
            "attempt": record.attempt,
        },
    )


def publish_runs(
    con: duckdb.DuckDBPyConnection, published: Path, run_date: date
) -> PublishedPartition:
    """The ``runs`` listing of a date: every attempt, newest last."""
    return publish_partition(
        con.sql(
            "select * exclude (run_date) from runs where run_date = $d order by attempt",
            params={"d": run_date},
        ),
        published,
        "runs",
        run_date,
    )


def date_status(con: duckdb.DuckDBPyConnection) -> dict[date, tuple[str, str]]:
    """Each run date's latest attempt: (status, run_id); the caller knows ``runs`` exists."""
    rows = con.execute(
        """select run_date, arg_max(status, attempt), arg_max(run_id, attempt)
           from runs group by run_date"""
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def later_dates_changed(
    con: duckdb.DuckDBPyConnection, run_date: date, new_run_id: str
) -> list[date]:
    """Later dates published from other inputs: the next date was built on a different run of
    this one, so it and every date after it read a state that has now changed."""
    rows = con.execute(
        """select run_date, arg_max(previous_run_id, attempt), arg_max(status, attempt)
           from runs where run_date > $d group by run_date order by run_date""",
        {"d": run_date},
    ).fetchall()
    if not rows or rows[0][1] == new_run_id:
        return []
    return [r[0] for r in rows if r[2] == "SUCCESS"]


def latest_runs(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The latest attempts, newest first: what ``creditflow runs`` lists."""
    rel = con.sql(
        """select run_date, attempt, run_id, trigger, status, model_version, code_version,
                  epoch(finished_at - started_at) as seconds, error
           from runs order by run_date desc, attempt desc limit $n""",
        params={"n": limit},
    )
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def last_published_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The latest business date with a successful run (a change by hand applies after it)."""
    rows = con.execute("select max(run_date) from runs where status = 'SUCCESS'").fetchall()
    return rows[0][0] if rows and rows[0][0] else None


# --- the run lock ------------------------------------------------------------------------------

_held: dict[Path, int] = {}
_held_guard = threading.Lock()


def lock_path(settings: Settings) -> Path:
    return settings.warehouse_path.with_name(settings.warehouse_path.name + ".run-lock")


@contextmanager
def run_lock(settings: Settings, holder: str) -> Iterator[None]:
    """Hold the warehouse for a whole run; re-entrant in one process (a backfill's nights)."""
    path = lock_path(settings)
    with _held_guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + settings.lock_wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    other = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                    raise WarehouseBusy(
                        f"warehouse {settings.warehouse_path} is in use by another creditflow run "
                        f"({other or 'unknown holder'}); DuckDB allows one writer. Wait for it to "
                        "finish, or set a lock wait time (CREDITFLOW_LOCK_WAIT_SECONDS)."
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"pid {os.getpid()}, {holder}, since {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}".encode(),
            0,
        )
        with _held_guard:
            _held[path] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def run_lock_migrated(settings: Settings, holder: str) -> Iterator[None]:
    """The run lock, with the warehouse brought to this code's schema version first (a step
    run by hand starts as a night does)."""
    with run_lock(settings, holder):
        with open_warehouse(
            settings.warehouse_path, wait_seconds=settings.lock_wait_seconds
        ) as con:
            migrate(con)
        yield

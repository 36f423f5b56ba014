"""Load one business date's delivery: verify, stage, validate, route, and commit in one go.

What is loaded is exactly what was delivered and passed the rules; what failed is kept
in ``quarantine`` with its rules; a bad delivery changes nothing. A redelivery of the
date replaces what that date loaded before, in one transaction, and nothing else. The
same delivery loaded twice is recognised by its checksums and leaves the warehouse as it
was (``force`` reloads anyway, e.g. after a rules change).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb

from creditflow.contract import EXTRACTS
from creditflow.landing import Delivery, DeliveryError, open_delivery
from creditflow.publish import publish_partition
from creditflow.settings import Settings
from creditflow.transforms.ingest.quarantine import route
from creditflow.transforms.ingest.references import add_reference_views, prepare_references
from creditflow.transforms.ingest.rules import RULES, RULES_VERSION, SHANGHAI_DATE
from creditflow.transforms.ingest.staging import Staged, stage
from creditflow.transforms.ingest.validation import ValidationSession, check_agreement
from creditflow.versioning import code_version
from creditflow.warehouse import count_rows, ensure_schema, scalar, transaction

WH = "wh"  # the warehouse, attached to the validation session's database


class DeliveryRejected(DeliveryError):
    """Too many rows broke the rules: the date is failed as a whole and nothing is loaded."""


@dataclass
class IngestResult:
    business_date: date
    load_id: str
    status: str  # LOADED or UNCHANGED
    rows_loaded: dict[str, int] = field(default_factory=dict)
    rows_quarantined: dict[str, int] = field(default_factory=dict)
    data_docs: str | None = None
    seconds: float = 0.0


def load_id_for(delivery: Delivery) -> str:
    """A content address: the same delivery under the same rules always has the same id."""
    payload = json.dumps(
        {
            "date": delivery.business_date.isoformat(),
            "files": delivery.fingerprint,
            "rules": RULES_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def ingest(
    settings: Settings,
    business_date: date,
    *,
    run_id: str | None = None,
    force: bool = False,
    data_docs: bool = True,
) -> IngestResult:
    """Load ``dt=business_date`` from the landing zone into the warehouse.

    ``data_docs=False`` skips rendering GX Data Docs (the validation itself still runs and
    is recorded): backfills render them only for the dates a person will look at.
    """
    t0 = time.perf_counter()
    delivery = open_delivery(settings.landing_dir, business_date)
    load_id = load_id_for(delivery)
    run_id = run_id or f"ingest-{load_id}"
    session = ValidationSession(
        settings.warehouse_path,
        WH,
        wait_seconds=settings.lock_wait_seconds,
        data_docs=settings.published_dir / "data_docs" if data_docs else None,
    )
    with session:
        con = session.con
        ensure_schema(con, WH)
        if not force and _already_loaded(con, business_date, load_id):
            _record_attempt(con, business_date, run_id, "UNCHANGED", None)
            return IngestResult(
                business_date, load_id, "UNCHANGED", seconds=time.perf_counter() - t0
            )
        try:
            result = _stage_and_validate(session, delivery, load_id, settings)
        except DeliveryError as exc:
            _record_attempt(con, business_date, run_id, "FAILED", str(exc))
            raise
        _commit(con, delivery, load_id, run_id, result)
        publish_partition(
            con.sql(
                f'select * exclude (dt) from {WH}.data_quality where dt = $d order by extract, "check"',
                params={"d": business_date},
            ),
            settings.published_dir,
            "data_quality",
            business_date,
        )
    result.seconds = time.perf_counter() - t0
    return result


def _already_loaded(con: duckdb.DuckDBPyConnection, business_date: date, load_id: str) -> bool:
    latest = scalar(
        con,
        f"select load_id from {WH}.loads where business_date = $d order by loaded_at desc limit 1",
        {"d": business_date},
    )
    return latest == load_id


def _record_attempt(
    con: duckdb.DuckDBPyConnection, business_date: date, run_id: str, status: str, error: str | None
) -> None:
    con.execute(
        f"insert into {WH}.load_attempts values ($d, $run, now(), $status, $error)",
        {"d": business_date, "run": run_id, "status": status, "error": error},
    )


@dataclass
class _Checked:
    staged: Staged
    manifest_rows: int
    failing: dict[str, int]


def _stage_and_validate(
    session: ValidationSession, delivery: Delivery, load_id: str, settings: Settings
) -> IngestResult:
    con = session.con
    checked: dict[str, _Checked] = {}
    for extract in EXTRACTS:  # staging needs nothing but the file
        f = delivery.file(extract.name)
        staged = stage(con, f)
        if staged.rows != f.manifest_rows:
            raise DeliveryError(
                f"{f.path}: the manifest says {f.manifest_rows} rows, the file holds {staged.rows} "
                f"({staged.rejected_rows} of them unparseable) (rule: manifest row count)"
            )
        checked[extract.name] = _Checked(staged, f.manifest_rows, {})
    prepare_references(con, delivery.business_date, WH)  # narrowed to the staged ids
    for name, c in checked.items():  # routing follows references: customers, loans, ...
        c.failing = route(con, c.staged, RULES[name])
        add_reference_views(con, name, WH)

    gx_counts, docs = session.validate(
        delivery.business_date, {name: c.staged.table for name, c in checked.items()}
    )
    check_agreement(gx_counts, {name: c.failing for name, c in checked.items()})

    quality: list[tuple] = []
    result = IngestResult(delivery.business_date, load_id, "LOADED", data_docs=docs)
    problems = []
    for name, c in checked.items():
        loaded = count_rows(con, f"ok_{name}")
        quarantined = count_rows(con, f"q_{name}")
        result.rows_loaded[name] = loaded
        result.rows_quarantined[name] = quarantined
        quality += _quality_rows(name, c, loaded, quarantined, gx_counts.get(name, {}))
        share = quarantined / c.manifest_rows if c.manifest_rows else 0.0
        if share > settings.max_quarantine_share:
            top = sorted(((n, r) for r, n in c.failing.items() if n), reverse=True)[:5]
            problems.append(
                f"{delivery.file(name).path}: {quarantined} of {c.manifest_rows} rows ({share:.1%}) break rules, "
                f"above the {settings.max_quarantine_share:.1%} limit; most common: "
                + ", ".join(f"{r} ({n})" for n, r in top)
            )
    if problems:
        raise DeliveryRejected("delivery rejected, nothing loaded:\n  " + "\n  ".join(problems))
    con.execute(
        'create or replace table dq_rows (extract VARCHAR, "check" VARCHAR, success BOOLEAN, rows_checked BIGINT, rows_failed BIGINT, rows_quarantined BIGINT)'
    )
    con.executemany("insert into dq_rows values (?, ?, ?, ?, ?, ?)", quality)
    return result


def _quality_rows(
    name: str, c: _Checked, loaded: int, quarantined: int, gx: dict[str, int]
) -> list[tuple]:
    rows = [
        (
            name,
            f"{name}.parse",
            c.staged.rejected_rows == 0,
            c.manifest_rows,
            c.staged.rejected_rows,
            c.staged.rejected_rows,
        ),
        (
            name,
            f"{name}.duplicate_row",
            c.staged.duplicate_rows == 0,
            c.staged.parsed_rows,
            c.staged.duplicate_rows,
            c.staged.duplicate_rows,
        ),
    ]
    checked_rows = c.staged.parsed_rows - c.staged.duplicate_rows
    for rule in RULES[name]:
        if rule.phase == "staging":
            continue
        failed = gx.get(rule.id, c.failing.get(rule.id, 0))
        rows.append((name, rule.id, failed == 0, checked_rows, failed, c.failing.get(rule.id, 0)))
    missing = c.manifest_rows - loaded - quarantined
    rows.append((name, f"{name}.reconciliation", missing == 0, c.manifest_rows, abs(missing), 0))
    return rows


def _commit(
    con: duckdb.DuckDBPyConnection,
    delivery: Delivery,
    load_id: str,
    run_id: str,
    result: IngestResult,
) -> None:
    """Replace exactly this date's rows, in one transaction."""
    d = delivery.business_date
    # row order inside the warehouse carries no meaning; letting DuckDB insert in parallel does
    con.execute("set preserve_insertion_order = false")
    try:
        with transaction(con):
            for e in EXTRACTS:
                cols = ", ".join(e.column_names)
                con.execute(f"delete from {WH}.{e.name} where dt = $d", {"d": d})
                late = (
                    f", {SHANGHAI_DATE.format(col='txn_ts')} < $d as is_late"
                    if e.name == "transactions"
                    else ""
                )
                con.execute(
                    f"insert into {WH}.{e.name} select {cols}{late}, $d, $load from ok_{e.name}",
                    {"d": d, "load": load_id},
                )
            con.execute(f"delete from {WH}.quarantine where dt = $d", {"d": d})
            for e in EXTRACTS:
                con.execute(
                    f"""insert into {WH}.quarantine
                        select $d, '{e.name}', $load, source_row, line, natural_key, failed_rules, record
                        from q_{e.name} order by source_row""",
                    {"d": d, "load": load_id},
                )
            con.execute(f"delete from {WH}.data_quality where dt = $d", {"d": d})
            con.execute(
                f'insert into {WH}.data_quality select $d, extract, "check", success, rows_checked, rows_failed, rows_quarantined, $run from dq_rows',
                {"d": d, "run": run_id},
            )
            con.execute(f"delete from {WH}.load_files where business_date = $d", {"d": d})
            for f in delivery.files:
                con.execute(
                    f"insert into {WH}.load_files values ($load, $d, $extract, $file, $sha, $bytes, $rows, $ok, $q)",
                    {
                        "load": load_id,
                        "d": d,
                        "extract": f.extract.name,
                        "file": str(f.path),
                        "sha": f.sha256,
                        "bytes": f.size,
                        "rows": f.manifest_rows,
                        "ok": result.rows_loaded[f.extract.name],
                        "q": result.rows_quarantined[f.extract.name],
                    },
                )
            con.execute(
                f"insert or replace into {WH}.loads values ($load, $d, $run, $rules, $code, $gen, now(), $fmt, $docs)",
                {
                    "load": load_id,
                    "d": d,
                    "run": run_id,
                    "rules": RULES_VERSION,
                    "code": code_version(),
                    "gen": delivery.generated_at,
                    "fmt": delivery.files[0].fmt,
                    "docs": result.data_docs,
                },
            )
            _record_attempt(con, d, run_id, "LOADED", None)
    finally:
        con.execute("set preserve_insertion_order = true")

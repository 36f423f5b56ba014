"""The nightly flow and the backfill flow.

``nightly(run_date)``: check the delivery → ingest and validate (a failed gate stops the run;
what was published before stays) → ledger and delinquency reports → retrain when due →
score and limits → publish → the run record. Tasks are thin wrappers over creditflow's
functions; only IO that a retry can fix is retried (publishing files), never validation.
No task reads the clock for a business date: a scheduled run's date is the day before its
scheduled time in Asia/Shanghai.

``backfill(start, end)`` runs the nights in order (the ledger of a date builds on the day
before), skipping dates already published unless told otherwise, and stops at the first
date that fails, leaving every earlier date published.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from creditflow import runs
from creditflow.bi_catalog import refresh_catalog
from creditflow.catalog import clear_staging, publication_batch
from creditflow.delinquency import run_ledger
from creditflow.delivery_checks import checked_or_none
from creditflow.execution import client_for
from creditflow.ingest import ingest, load_id_for
from creditflow.landing import Delivery, open_delivery
from creditflow.limits import run_limits
from creditflow.modeling import RetrainOutcome, retrain_if_due
from creditflow.models.dataset import Frame
from creditflow.models.registry import Registry
from creditflow.policy import LimitPolicy, load_policy
from creditflow.report import write_report
from creditflow.settings import BUSINESS_TZ, Settings, load_settings
from creditflow.shard_customers import population_for
from creditflow.transforms.reports import bucket_mix
from creditflow.transforms.rules import RULES_VERSION
from creditflow.versioning import code_version
from creditflow.warehouse import has_table, open_warehouse

if TYPE_CHECKING:
    from distributed import Client

SHANGHAI = ZoneInfo(BUSINESS_TZ)


def scheduled_run_date(scheduled: datetime) -> date:
    """The business date a scheduled run processes: the day before, in Asia/Shanghai."""
    return scheduled.astimezone(SHANGHAI).date() - timedelta(days=1)


def _io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what a retry can fix: file-system trouble, not bad data or bad code."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # any other failure is final
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 5,
    "retry_condition_fn": _io_error,
    "cache_policy": NO_CACHE,
}


@task(name="check delivery", cache_policy=NO_CACHE)
def check_delivery(settings: Settings, d: date, checked: Delivery | None = None) -> Delivery:
    """The manifest is there and every file matches its row count and checksum (``checked``:
    a backfill on a cluster verified it moments ago, in parallel with the other dates)."""
    return checked if checked is not None else open_delivery(settings.landing_dir, d)


@task(name="check delivery ahead", cache_policy=NO_CACHE)
def check_ahead_task(settings: Settings, d: date) -> Delivery | None:
    return checked_or_none(settings.landing_dir, d)


@flow(name="check deliveries", validate_parameters=False)
def check_deliveries(settings: Settings, dates: list[date]) -> list[Delivery | None]:
    """Every date's delivery checked at once, one task run per date on the flow's task runner.
    A subflow of its own so that what Prefect sends to the workers with each task (the run's
    context) is this flow's few parameters, not the backfill's (a CLI progress callback)."""
    futures = [
        check_ahead_task.with_options(task_run_name=f"check delivery ahead {d}").submit(settings, d)
        for d in dates
    ]
    return [f.result() for f in futures]


def check_ahead(client: Client, settings: Settings, dates: list[date]) -> dict[date, Delivery]:
    """A backfill on a cluster checks every date's delivery at once on the Dask workers
    (prefect-dask's task runner); the dates that passed skip the check in their night."""
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=client.scheduler.address)
    found = check_deliveries.with_options(task_runner=runner)(settings, dates)
    return {d: got for d, got in zip(dates, found, strict=True) if got is not None}


@task(name="ingest and validate", cache_policy=NO_CACHE)
def ingest_task(settings: Settings, d: date, run_id: str, data_docs: bool) -> dict[str, Any]:
    result = ingest(settings, d, run_id=run_id, data_docs=data_docs)
    return {
        "status": result.status,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "data_docs": result.data_docs,
    }


@task(name="ledger and delinquency reports", **IO_RETRIES)
def ledger_task(settings: Settings, d: date, run_id: str) -> dict[str, Any]:
    result = run_ledger(settings, d, run_id=run_id)
    return {"active_loans": result.ledger.active_loans, "published": result.rows}


@task(name="features", cache_policy=NO_CACHE)
def features_task(settings: Settings, d: date) -> Frame:
    """Tonight's model input, built once: the drift check and the scoring both read it."""
    return population_for(settings, d)


def _keep(holder: list[Frame], frame: Frame) -> dict[str, int]:
    holder.append(frame)
    return {"customers": len(frame.customer_id), "features": len(frame.names)}


@task(name="retrain when due", cache_policy=NO_CACHE)
def retrain_task(settings: Settings, d: date, run_id: str, frame: Frame) -> RetrainOutcome:
    return retrain_if_due(settings, d, run_id=run_id, frame=frame)


@task(name="score and limits", **IO_RETRIES)
def limits_task(
    settings: Settings, d: date, run_id: str, policy: LimitPolicy, frame: Frame
) -> dict[str, Any]:
    result = run_limits(settings, d, run_id=run_id, policy=policy, frame=frame)
    assert result.published is not None
    return {
        "model_version": result.model_version,
        "customers": result.customers,
        "actions": result.actions,
        "reasons_computed": result.reasons_computed,
        "published": {result.published.table: result.published.rows},
    }


@task(name="run report", **IO_RETRIES)
def report_task(settings: Settings, d: date) -> str:
    return str(write_report(settings, d))


@dataclass
class NightResult:
    run_id: str
    run_date: date
    status: str
    model_version: str | None = None
    steps: dict[str, Any] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    later_dates_changed: list[date] = field(default_factory=list)
    error: str | None = None
    report: str | None = None


class NightFailed(RuntimeError):
    """A night stopped; the message names the date and the failing step's error."""


def _begin(
    settings: Settings, d: date, delivery: Delivery, trigger: str, policy: LimitPolicy
) -> runs.RunRecord:
    registry = Registry(settings.models_dir)
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        runs.ensure_runs_schema(con)
        runs.close_interrupted(con, f"the run for {d}")
        previous = runs.previous_run(con, d)  # raises when the date before failed last time
        versions: dict[str, str | None] = {
            "code": code_version(),
            "rules": RULES_VERSION,
            "policy": policy.full_version,
            # the champion the night starts from; its own promotion follows from the rest
            "champion": registry.champion_before(d),
            "settings": settings.model_dump_json(
                include={
                    "max_quarantine_share",
                    "retrain_every_days",
                    "retrain_psi",
                    "gate_min_auc",
                    "gate_max_psi",
                    "gate_max_auc_drop",
                }
            ),
        }
        record = runs.RunRecord(
            run_id=runs.derive_run_id(d, delivery.fingerprint, versions, previous),
            run_date=d,
            trigger=trigger,
            code_version=code_version(),
            previous_run_id=previous,
            load_id=load_id_for(delivery),
            input_files=[
                {"file": str(f.path), "sha256": f.sha256, "rows": f.manifest_rows}
                for f in delivery.files
            ],
            policy_version=policy.full_version,
            flow_run_id=str(runtime.flow_run.id) if runtime.flow_run.id else None,
        )
        runs.start(con, record)
    return record


def _end(settings: Settings, record: runs.RunRecord) -> list[date]:
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        runs.finish(con, record)
        runs.publish_runs(con, settings.published_dir, record.run_date)
        if record.status != "SUCCESS":
            return []
        return runs.later_dates_changed(con, record.run_date, record.run_id)


def _failed_record(settings: Settings, d: date, trigger: str, error: str) -> None:
    """A night that failed before it had a run id (an incomplete or corrupt delivery)."""
    record = runs.RunRecord(
        run_id=f"r{d:%Y%m%d}-failed",
        run_date=d,
        trigger=trigger,
        code_version=code_version(),
        previous_run_id=None,
        load_id=None,
        input_files=[],
        policy_version="",
        flow_run_id=str(runtime.flow_run.id) if runtime.flow_run.id else None,
        status="FAILED",
        error=error,
    )
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        runs.start(con, record)
        runs.finish(con, record)
        runs.publish_runs(con, settings.published_dir, d)


@flow(name="nightly", log_prints=True)
def nightly(
    run_date: date | None = None,
    overrides: dict[str, Any] | None = None,
    trigger: str = "manual",
    data_docs: bool | None = None,
) -> dict[str, Any]:
    """One business date through the whole pipeline. Without ``run_date``: the day before the
    scheduled time in Asia/Shanghai (how the cron deployment runs it)."""
    settings = load_settings(**(overrides or {}))
    if run_date is None:
        run_date = scheduled_run_date(runtime.flow_run.scheduled_start_time)
        trigger = "schedule" if trigger == "manual" else trigger
    docs = settings.data_docs if data_docs is None else data_docs
    with runs.run_lock(settings, f"nightly {run_date}"):
        night = run_night(settings, run_date, trigger=trigger, data_docs=docs)
        _artifacts(settings, night)
    return _as_dict(night)


# Inside a run the run lock keeps other creditflow runs out; what can still hold the DuckDB
# file for a moment is a reader (a person with the DuckDB CLI, `creditflow runs`). Steps wait
# for them rather than fail the night.
STEP_WAIT_SECONDS = 120.0


def run_night(
    settings: Settings,
    d: date,
    *,
    trigger: str,
    data_docs: bool,
    report: bool = True,
    checked: Delivery | None = None,
) -> NightResult:
    """The night's steps as tasks of the calling flow (nightly, or backfill for each date).

    Every partition the night writes is staged and swapped in only when all steps succeeded,
    so a failed night publishes nothing new. Raises NightFailed after recording the failure.
    ``settings.execution`` decides where the per-shard work runs (creditflow.execution); the
    night's rows and run id are the same either way.
    """
    with client_for(settings):  # one cluster for the night (a backfill's, when it has one)
        return _run_night(settings, d, trigger, data_docs, report, checked)


def _run_night(
    settings: Settings,
    d: date,
    trigger: str,
    data_docs: bool,
    report: bool,
    checked: Delivery | None,
) -> NightResult:
    logger = get_run_logger()
    settings = settings.model_copy(
        update={"lock_wait_seconds": max(settings.lock_wait_seconds, STEP_WAIT_SECONDS)}
    )
    cleared = clear_staging(settings.published_dir)  # under the run lock: nobody else writes
    if cleared:
        logger.warning("removed %d staging files an interrupted run left behind", cleared)
    try:
        delivery = check_delivery.with_options(task_run_name=f"check delivery {d}")(
            settings, d, checked
        )
        policy = load_policy(settings.policy_file)  # once: the record and the rows agree
        record = _begin(settings, d, delivery, trigger, policy)
    except Exception as exc:
        _failed_record(settings, d, trigger, str(exc))
        raise NightFailed(f"{d}: cannot start: {exc}") from exc
    logger.info("run %s for %s (previous %s)", record.run_id, d, record.previous_run_id)
    night = NightResult(run_id=record.run_id, run_date=d, status="RUNNING")
    step = "ingest"
    built: list[Frame] = []  # tonight's features, kept out of the run's summary
    try:
        with publication_batch():
            for step, call in (
                ("ingest", lambda: ingest_task.with_options(task_run_name=f"ingest {d}")(settings, d, record.run_id, data_docs)),
                ("ledger", lambda: ledger_task.with_options(task_run_name=f"ledger {d}")(settings, d, record.run_id)),
                ("features", lambda: _keep(built, features_task.with_options(task_run_name=f"features {d}")(settings, d))),
                ("retrain", lambda: retrain_task.with_options(task_run_name=f"retrain when due {d}")(settings, d, record.run_id, built[0])),
                ("limits", lambda: limits_task.with_options(task_run_name=f"score and limits {d}")(settings, d, record.run_id, policy, built[0])),
            ):  # fmt: skip
                t0 = time.perf_counter()
                night.steps[step] = call()
                night.durations[step] = time.perf_counter() - t0
            step = "publish"
    except Exception as exc:
        record.status, record.error = "FAILED", f"{step}: {exc}"
        record.durations = night.durations
        _end(settings, record)
        raise NightFailed(f"{d}: {step} failed: {exc}") from exc
    record.status = night.status = "SUCCESS"
    record.model_version = night.model_version = night.steps["limits"]["model_version"]
    record.row_counts = _row_counts(night.steps)
    record.durations = night.durations
    night.later_dates_changed = _end(settings, record)
    # BI tools attach this read-only; rebuilt each night so a table's first partition shows up
    refresh_catalog(settings.published_dir)
    if report:
        # the night is published and recorded; a report that cannot be drawn is logged, not fatal
        try:
            night.report = report_task.with_options(task_run_name=f"run report {d}")(settings, d)
        except Exception as exc:
            logger.warning("the run report for %s could not be written: %s", d, exc)
    return night


def _row_counts(steps: dict[str, Any]) -> dict[str, dict[str, int]]:
    ingest_rows = steps["ingest"]
    out = {
        "ingest": {f"{k}_loaded": v for k, v in ingest_rows["rows_loaded"].items()}
        | {f"{k}_quarantined": v for k, v in ingest_rows["rows_quarantined"].items()},
        "ledger": {"active_loans": steps["ledger"]["active_loans"], **steps["ledger"]["published"]},
        "features": steps["features"],
        "limits": {"customers": steps["limits"]["customers"], **steps["limits"]["published"]},
    }
    retrain: RetrainOutcome = steps["retrain"]
    if retrain.run is not None:
        out["retrain"] = {"n_train": retrain.run.n_train}
    return out


def _as_dict(night: NightResult) -> dict[str, Any]:
    out = asdict(night)
    retrain = night.steps.get("retrain")
    if isinstance(retrain, RetrainOutcome):
        out["steps"]["retrain"] = {
            "due": retrain.due,
            "due_reason": retrain.due_reason,
            "tonight_psi": retrain.tonight_psi,
            "trained": retrain.run.model_version if retrain.run else None,
            "promoted": retrain.run.promoted if retrain.run else False,
            "decision": retrain.run.decision_reason if retrain.run else None,
            "auc": retrain.run.auc if retrain.run else None,
        }
    return out


def _artifacts(settings: Settings, night: NightResult) -> None:
    """What a person opening the run in the Prefect UI wants to see."""
    d, key = night.run_date, f"{night.run_date:%Y-%m-%d}"
    retrain: RetrainOutcome = night.steps["retrain"]
    limits = night.steps["limits"]
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        dq = con.execute(
            """select extract, "check", success, rows_checked, rows_failed, rows_quarantined
               from data_quality where dt = $d order by extract, "check" """,
            {"d": d},
        ).fetchall()
        buckets = bucket_mix(con, d)
    model_line = (
        f"trained {retrain.run.model_version}: AUC {retrain.run.auc or float('nan'):.3f}, "
        f"{'promoted' if retrain.run.promoted else 'not promoted'} ({retrain.run.decision_reason})"
        if retrain.run is not None and retrain.run.model_version
        else (retrain.run.decision_reason if retrain.run is not None else "not due")
    )
    create_markdown_artifact(
        key="nightly-summary",
        description=f"creditflow nightly {key}",
        markdown="\n".join(
            [
                f"# creditflow nightly {key}",
                f"- run id `{night.run_id}`",
                f"- ingest: {night.steps['ingest']['status']}; rows loaded "
                f"{sum(night.steps['ingest']['rows_loaded'].values()):,}, quarantined "
                f"{sum(night.steps['ingest']['rows_quarantined'].values()):,}",
                f"- ledger: {night.steps['ledger']['active_loans']:,} active loans",
                f"- retrain: {retrain.due_reason}; {model_line}",
                f"- limits: {limits['customers']:,} customers, model "
                f"{limits['model_version'] or 'none (starter rule)'}",
                f"- later dates whose inputs changed: {', '.join(map(str, night.later_dates_changed)) or 'none'}",
                "",
                "| step | seconds |",
                "|---|---|",
                *[f"| {k} | {v:.2f} |" for k, v in night.durations.items()],
            ]
        ),
    )
    create_table_artifact(
        key="data-quality",
        table=[
            dict(
                zip(
                    (
                        "extract",
                        "check",
                        "success",
                        "rows_checked",
                        "rows_failed",
                        "rows_quarantined",
                    ),
                    r,
                    strict=True,
                )
            )
            for r in dq
        ],
        description=f"data quality checks {key}",
    )
    create_table_artifact(
        key="limit-actions",
        table=[{"action": a, "customers": n} for a, n in limits["actions"].items()],
        description=f"limit action mix {key}",
    )
    create_table_artifact(
        key="delinquency-buckets",
        table=[
            {"bucket": b, "accounts": n, "balance": str(bal), "share": f"{share:.1%}"}
            for b, n, bal, share in buckets
        ],
        description=f"delinquency buckets {key}",
    )


# --- backfill ---------------------------------------------------------------------------------


class Reprocess(StrEnum):
    missing = "missing"  # dates without a successful run
    failed = "failed"  # dates whose latest run failed
    all = "all"  # every date in the range


def plan(settings: Settings, start: date, end: date, reprocess: Reprocess) -> list[date]:
    """The dates a backfill will run, in order."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    status: dict[date, tuple[str, str]] = {}
    if settings.warehouse_path.exists():
        with open_warehouse(
            settings.warehouse_path, read_only=True, wait_seconds=STEP_WAIT_SECONDS
        ) as con:
            if has_table(con, "runs"):
                status = runs.date_status(con)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if reprocess is Reprocess.all:
        return days
    if reprocess is Reprocess.failed:
        return [d for d in days if status.get(d, ("",))[0] == "FAILED"]
    return [d for d in days if status.get(d, ("",))[0] != "SUCCESS"]


@flow(name="backfill", validate_parameters=False)
def backfill(
    start: date,
    end: date,
    reprocess: Reprocess = Reprocess.missing,
    overrides: dict[str, Any] | None = None,
    trigger: str = "backfill",
    on_date: Callable[[date, dict[str, Any] | None], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the nights from ``start`` to ``end`` in order; stop at the first that fails.

    Data Docs are rendered for the last date only (a person looks at the latest). ``on_date``
    is called before each date with None and after it with its result (the CLI's progress bar).
    """
    settings = load_settings(**(overrides or {}))
    dates = plan(settings, start, end, Reprocess(reprocess))
    results: list[dict[str, Any]] = []
    progress = create_progress_artifact(
        progress=0.0, key="backfill-progress", description=f"backfill {start} .. {end}"
    )
    with runs.run_lock(settings, f"backfill {start} .. {end}"), client_for(settings) as client:
        checked = check_ahead(client, settings, dates) if client is not None and dates else {}
        for i, d in enumerate(dates, start=1):
            if on_date:
                on_date(d, None)
            last = d == dates[-1]  # Data Docs and the report: for the date a person looks at
            night = run_night(
                settings,
                d,
                trigger=trigger,
                data_docs=settings.data_docs and last,
                report=last,
                checked=checked.get(d),
            )
            results.append(_as_dict(night))
            if on_date:
                on_date(d, results[-1])
            if progress is not None:
                update_progress_artifact(progress, progress=100.0 * i / len(dates))
        if results:
            _artifacts(settings, night)  # the last night's summary, data quality, actions, buckets
    return results

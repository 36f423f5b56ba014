"""The nightly flow: one business date through the whole pipeline, as plain calls.

check the delivery → record the run's start → ingest and validate (a failed gate stops the
run; what was published before stays) → ledger and delinquency reports → features → retrain
when due → score, limits and pricing → customer notices → the run record → the BI catalog
and the run report. Each call is a Prefect task over a step (flows.tasks); the steps decide
nothing about where their work runs (creditflow.execution). No task reads the clock for a business date: a scheduled
run's date is the day before its scheduled time in Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from prefect import flow, get_run_logger, runtime

from creditflow.execution import executor_for
from creditflow.flows import runs
from creditflow.flows.artifacts import publish_artifacts
from creditflow.flows.schedule import scheduled_run_date
from creditflow.flows.stopwatch import Stopwatch
from creditflow.flows.tasks import (
    advance_ledger,
    build_features,
    build_notices,
    check_delivery,
    ingest_delivery,
    render_report,
    retrain_when_due,
    score_and_limit,
)
from creditflow.landing import Delivery
from creditflow.migrations import migrate
from creditflow.models.registry import Registry
from creditflow.outputs.bi_catalog import refresh_catalog
from creditflow.policy.config import LimitPolicy, load_policy
from creditflow.publish import clear_staging, publication_batch
from creditflow.settings import Settings, load_settings
from creditflow.steps.ingest import load_id_for
from creditflow.steps.retrain import RetrainOutcome
from creditflow.transforms.ingest.rules import RULES_VERSION
from creditflow.versioning import code_version
from creditflow.warehouse import open_warehouse

# Inside a run the run lock keeps other creditflow runs out; what can still hold the DuckDB
# file for a moment is a reader (a person with the DuckDB CLI, `creditflow runs`). Steps wait
# for them rather than fail the night.
STEP_WAIT_SECONDS = 120.0


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
        publish_artifacts(settings, night)
    return night_summary(night)


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
    Called under the run lock.
    """
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
    run_id, watch = record.run_id, Stopwatch()
    try:
        # one executor for the night: on a cluster, the steps share it (a backfill's, when open)
        with executor_for(settings), publication_batch():
            with watch.step("ingest"):
                loaded = ingest_delivery.with_options(task_run_name=f"ingest {d}")(
                    settings, d, run_id, data_docs
                )
            with watch.step("ledger"):
                ledger = advance_ledger.with_options(task_run_name=f"ledger {d}")(
                    settings, d, run_id
                )
            with watch.step("features"):
                frame = build_features.with_options(task_run_name=f"features {d}")(settings, d)
            with watch.step("retrain"):
                retrained = retrain_when_due.with_options(task_run_name=f"retrain when due {d}")(
                    settings, d, run_id, frame
                )
            with watch.step("limits"):
                limits = score_and_limit.with_options(task_run_name=f"score and limits {d}")(
                    settings, d, run_id, policy, frame
                )
            with watch.step("notices"):
                notices = build_notices.with_options(task_run_name=f"customer notices {d}")(
                    settings, d, run_id, policy
                )
            watch.current = "publish"
    except Exception as exc:
        record.status, record.error = "FAILED", f"{watch.current}: {exc}"
        record.durations = night.durations = watch.durations
        _end(settings, record)
        raise NightFailed(f"{d}: {watch.current} failed: {exc}") from exc
    night.steps = {
        "ingest": loaded,
        "ledger": ledger,
        "features": {"customers": len(frame.customer_id), "features": len(frame.names)},
        "retrain": retrained,
        "limits": limits,
        "notices": notices,
    }
    night.durations = watch.durations
    record.status = night.status = "SUCCESS"
    record.model_version = night.model_version = limits["model_version"]
    record.row_counts = _row_counts(night.steps)
    record.durations = night.durations
    night.later_dates_changed = _end(settings, record)
    # BI tools attach this read-only; rebuilt each night so a table's first partition shows up
    refresh_catalog(settings.published_dir)
    if report:
        # the night is published and recorded; a report that cannot be drawn is logged, not fatal
        try:
            night.report = render_report.with_options(task_run_name=f"run report {d}")(settings, d)
        except Exception as exc:
            logger.warning("the run report for %s could not be written: %s", d, exc)
    return night


def _begin(
    settings: Settings, d: date, delivery: Delivery, trigger: str, policy: LimitPolicy
) -> runs.RunRecord:
    registry = Registry(settings.models_dir)
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        migrate(con)  # under the run lock: a warehouse of an older version moves forward first
        runs.ensure_runs_schema(con)
        runs.close_interrupted(con, f"the run for {d}")
        previous = runs.previous_run(con, d)  # raises when the date before failed last time
        versions: dict[str, str | None] = {
            "code": code_version(),
            "rules": RULES_VERSION,
            "policy": policy.full_version,
            # the champion the night starts from; its own promotion follows from the rest
            "champion": registry.champion_before(d),
            "settings": settings.results_json(),
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


def _row_counts(steps: dict[str, Any]) -> dict[str, dict[str, int]]:
    ingest_rows = steps["ingest"]
    out = {
        "ingest": {f"{k}_loaded": v for k, v in ingest_rows["rows_loaded"].items()}
        | {f"{k}_quarantined": v for k, v in ingest_rows["rows_quarantined"].items()},
        "ledger": {"active_loans": steps["ledger"]["active_loans"], **steps["ledger"]["published"]},
        "features": steps["features"],
        "limits": {"customers": steps["limits"]["customers"], **steps["limits"]["published"]},
        # on a rerun, how many notice ids it added, withdrew and changed (notice_revisions has them)
        "notices": {
            **steps["notices"]["published"],
            "added": steps["notices"]["added"],
            "withdrawn": steps["notices"]["withdrawn"],
            "changed": steps["notices"]["changed"],
        },
    }
    retrain: RetrainOutcome = steps["retrain"]
    if retrain.run is not None:
        out["retrain"] = {"n_train": retrain.run.n_train}
    return out


def night_summary(night: NightResult) -> dict[str, Any]:
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

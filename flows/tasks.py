"""The night's Prefect tasks: thin wrappers over the steps, each returning what the run record
and the artifacts show. Only IO that a retry can fix is retried (publishing files), never
validation."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from creditflow.landing import Delivery, open_delivery
from creditflow.models.dataset import Frame
from creditflow.outputs.report import write_report
from creditflow.policy.config import LimitPolicy
from creditflow.settings import Settings
from creditflow.steps.customer_notices import run_notices
from creditflow.steps.delinquency import run_ledger
from creditflow.steps.ingest import ingest
from creditflow.steps.limits import run_limits
from creditflow.steps.population import build_population
from creditflow.steps.retrain import RetrainOutcome, retrain_if_due


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


@task(name="ingest and validate", cache_policy=NO_CACHE)
def ingest_delivery(settings: Settings, d: date, run_id: str, data_docs: bool) -> dict[str, Any]:
    result = ingest(settings, d, run_id=run_id, data_docs=data_docs)
    return {
        "status": result.status,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "data_docs": result.data_docs,
    }


@task(name="ledger and delinquency reports", **IO_RETRIES)
def advance_ledger(settings: Settings, d: date, run_id: str) -> dict[str, Any]:
    result = run_ledger(settings, d, run_id=run_id)
    return {"active_loans": result.ledger.active_loans, "published": result.rows}


@task(name="features", cache_policy=NO_CACHE)
def build_features(settings: Settings, d: date) -> Frame:
    """Tonight's model input, built once: the drift check and the scoring both read it."""
    return build_population(settings, d)


@task(name="retrain when due", cache_policy=NO_CACHE)
def retrain_when_due(settings: Settings, d: date, run_id: str, frame: Frame) -> RetrainOutcome:
    return retrain_if_due(settings, d, run_id=run_id, frame=frame)


@task(name="score and limits", **IO_RETRIES)
def score_and_limit(
    settings: Settings, d: date, run_id: str, policy: LimitPolicy, frame: Frame
) -> dict[str, Any]:
    outcome = run_limits(settings, d, run_id=run_id, policy=policy, frame=frame)
    result = outcome.result
    return {
        "model_version": result.model_version,
        "customers": result.customers,
        "actions": result.actions,
        "reasons_computed": result.reasons_computed,
        "published": {
            outcome.published.table: outcome.published.rows,
            outcome.pricing.table: outcome.pricing.rows,
        },
    }


@task(name="customer notices", **IO_RETRIES)
def build_notices(settings: Settings, d: date, run_id: str, policy: LimitPolicy) -> dict[str, Any]:
    outcome = run_notices(settings, d, run_id=run_id, policy=policy)
    result = outcome.result
    return {
        "notices": result.notices,
        "by_type": result.by_type,
        "added": result.added,
        "withdrawn": result.withdrawn,
        "changed": result.changed,
        "rerun": not result.first_run,
        "published": {outcome.published.table: outcome.published.rows},
    }


@task(name="run report", **IO_RETRIES)
def render_report(settings: Settings, d: date) -> str:
    return str(write_report(settings, d))

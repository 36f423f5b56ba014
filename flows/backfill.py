"""The backfill flow: the nights from a start to an end date, in order.

The ledger of a date builds on the day before, so nights run in date order; dates already
published are skipped unless told otherwise, and the first date that fails stops the
backfill, leaving every earlier date published.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from creditflow.execution import executor_for
from creditflow.flows import runs
from creditflow.flows.artifacts import publish_artifacts
from creditflow.flows.nightly import STEP_WAIT_SECONDS, night_summary, run_night
from creditflow.flows.schedule import Reprocess
from creditflow.settings import Settings, load_settings
from creditflow.warehouse import has_table, open_warehouse


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
    with (
        runs.run_lock(settings, f"backfill {start} .. {end}"),
        executor_for(settings) as executor,  # one cluster for every night, when there is one
    ):
        checked = executor.check_deliveries(settings.landing_dir, dates)
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
            results.append(night_summary(night))
            if on_date:
                on_date(d, results[-1])
            if progress is not None:
                update_progress_artifact(progress, progress=100.0 * i / len(dates))
        if results:
            publish_artifacts(
                settings, night
            )  # the last night's summary, data quality, actions, buckets
    return results

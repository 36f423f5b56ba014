"""The nightly deployment: cron 02:00 Asia/Shanghai, one run at a time, served by this process.

``creditflow serve`` registers it on the Prefect server named by ``PREFECT_API_URL`` and runs
its scheduled runs here; ``prefect.yaml`` at the repository root offers the work-pool route
(``prefect deploy``) for teams that run workers. A scheduled run gets no run_date: the flow
takes the day before its scheduled time in Asia/Shanghai.
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from creditflow.flows.nightly import nightly
from creditflow.flows.schedule import DEFAULT_CRON, DEFAULT_NAME, DEFAULT_TIMEZONE


def nightly_deployment(
    overrides: dict[str, Any] | None = None,
    *,
    cron: str = DEFAULT_CRON,
    timezone: str = DEFAULT_TIMEZONE,
    name: str = DEFAULT_NAME,
) -> RunnerDeployment:
    return nightly.to_deployment(
        name=name,
        schedule=Cron(cron, timezone=timezone),
        parameters={"overrides": overrides or {}},
        # DuckDB has one writer: a second run waits in Prefect's queue instead of failing
        concurrency_limit=1,
        description="creditflow nightly: ingest, ledger, model, limits, publish (the day before, Asia/Shanghai)",
        tags=["creditflow", "nightly"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def serve_nightly(
    overrides: dict[str, Any] | None = None,
    *,
    cron: str = DEFAULT_CRON,
    timezone: str = DEFAULT_TIMEZONE,
    name: str = DEFAULT_NAME,
) -> None:
    """Register and serve until interrupted; the schedule stays active when serving stops."""
    serve(
        nightly_deployment(overrides, cron=cron, timezone=timezone, name=name),
        pause_on_shutdown=False,
    )

"""The nightly schedule on a real Prefect server, and the date a scheduled run processes.

The ephemeral API server that Prefect starts on demand runs no scheduler, so this test starts
``prefect server start`` on a loopback port, serves the deployment with ``creditflow serve``
(which registers it and executes its runs), checks the registered schedule and the runs the
server's scheduler created from it, then has the served process run two nights:

- 2026-01-01 as the scheduler would: no ``run_date``, scheduled at 2026-01-02 02:00 Shanghai, so
  the flow must derive its business date from the scheduled time (and record trigger=schedule);
- 2026-01-02 with an explicit ``run_date`` (the ledger builds on the day before).

Everything Prefect-side runs in subprocesses with their own environment: nothing here changes
PREFECT_* settings of the pytest process, which other tests share.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from creditflow.contract import BUSINESS_TZ
from creditflow.flows.nightly import scheduled_run_date
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig

SHANGHAI = ZoneInfo(BUSINESS_TZ)
DEPLOYMENT = "nightly/creditflow-nightly"
BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 60.0
# The helper's own waits: registration, the scheduler's runs, and each triggered run.
HELPER_TIMEOUT = 420.0


@pytest.mark.parametrize(
    ("scheduled", "business_date"),
    [
        # the cron's own instant: 02:00 in Shanghai processes the day before
        (datetime(2026, 3, 10, 2, 0, tzinfo=SHANGHAI), date(2026, 3, 9)),
        # the same instant in UTC is still the evening before; the date comes from Shanghai
        (datetime(2026, 3, 9, 18, 0, tzinfo=UTC), date(2026, 3, 9)),
        # a late start (02:30 Shanghai, 18:30 UTC the day before) keeps the date
        (datetime(2026, 3, 9, 18, 30, tzinfo=UTC), date(2026, 3, 9)),
        # Shanghai midnight is the first instant of the new day there
        (datetime(2026, 3, 9, 16, 0, tzinfo=UTC), date(2026, 3, 9)),
        (datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC), date(2026, 3, 8)),
        # across a year end and a leap day
        (datetime(2026, 1, 1, 2, 0, tzinfo=SHANGHAI), date(2025, 12, 31)),
        (datetime(2028, 3, 1, 2, 0, tzinfo=SHANGHAI), date(2028, 2, 29)),
        # a zone with daylight saving changes nothing: only the Shanghai wall clock counts
        (datetime(2026, 3, 8, 14, 0, tzinfo=ZoneInfo("America/New_York")), date(2026, 3, 8)),
    ],
)
def test_scheduled_run_date_is_the_day_before_in_shanghai(
    scheduled: datetime, business_date: date
) -> None:
    assert scheduled_run_date(scheduled) == business_date


# Runs with the venv's python against the server named by PREFECT_API_URL; prints one line
# "RESULT {json}" for the test to check, so the assertions (and their messages) stay in pytest.
HELPER = r"""
import json
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

name, run_timeout = sys.argv[1], float(sys.argv[2])
out = {"steps": []}


def emit():
    print("RESULT " + json.dumps(out, default=str), flush=True)


def step(text):
    out["steps"].append(f"{time.monotonic():.1f} {text}")
    print(text, file=sys.stderr, flush=True)


with get_client(sync_client=True) as client:
    deadline = time.monotonic() + 60
    while True:
        try:
            deployment = client.read_deployment_by_name(name)
            break
        except ObjectNotFound:
            if time.monotonic() > deadline:
                out["error"] = f"deployment {name} was not registered within 60 s"
                emit()
                sys.exit(0)
            time.sleep(0.5)
    step("deployment registered")
    # READY once the served process polls for its runs (NOT_READY right after registration)
    deadline = time.monotonic() + 30
    while deployment.status is None or deployment.status.value != "READY":
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        deployment = client.read_deployment_by_name(name)
    step(f"deployment {deployment.status}")
    gcl = deployment.global_concurrency_limit
    out["deployment"] = {
        "id": str(deployment.id),
        "name": deployment.name,
        "paused": deployment.paused,
        "status": str(deployment.status.value) if deployment.status else None,
        "entrypoint": deployment.entrypoint,
        "parameters": deployment.parameters,
        "tags": deployment.tags,
        "concurrency_limit": gcl.limit if gcl else None,
        "schedules": [
            {
                "type": type(s.schedule).__name__,
                "cron": getattr(s.schedule, "cron", None),
                "timezone": getattr(s.schedule, "timezone", None),
                "day_or": getattr(s.schedule, "day_or", None),
                "active": s.active,
            }
            for s in deployment.schedules
        ],
    }

    # The server's scheduler (absent from the ephemeral server) creates the upcoming runs.
    scheduled_filter = dict(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
    )
    deadline = time.monotonic() + 60
    upcoming = client.read_flow_runs(**scheduled_filter)
    while not upcoming and time.monotonic() < deadline:
        time.sleep(0.5)
        upcoming = client.read_flow_runs(**scheduled_filter)
    out["upcoming"] = [
        {
            "id": str(r.id),
            "expected_start_time": r.expected_start_time.isoformat(),
            "state": r.state.name if r.state else None,
            "auto_scheduled": r.auto_scheduled,
            "parameters": r.parameters,
        }
        for r in sorted(upcoming, key=lambda r: r.expected_start_time)
    ]
    step(f"{len(upcoming)} scheduled runs")

    def record(flow_run):
        return {
            "id": str(flow_run.id),
            "state_type": flow_run.state_type.value if flow_run.state_type else None,
            "state": flow_run.state.name if flow_run.state else None,
            "message": (flow_run.state.message or "")[:4000] if flow_run.state else None,
            "expected_start_time": flow_run.expected_start_time.isoformat(),
            "parameters": flow_run.parameters,
        }

    # 2026-01-01 the way the scheduler runs it: no run_date, scheduled at 02:00 Shanghai the
    # next day (in the past, so the served process picks it up at once).
    t0 = time.monotonic()
    flow_run = run_deployment(
        name,
        scheduled_time=datetime(2026, 1, 2, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        timeout=run_timeout,
        poll_interval=1,
        as_subflow=False,
    )
    out["as_scheduled"] = record(flow_run) | {"seconds": time.monotonic() - t0}
    step(f"as-scheduled run: {flow_run.state_type}")
    if flow_run.state_type != StateType.COMPLETED:
        emit()
        sys.exit(0)

    # 2026-01-02 on demand, with its date as a parameter.
    t0 = time.monotonic()
    flow_run = run_deployment(
        name,
        parameters={"run_date": "2026-01-02"},
        timeout=run_timeout,
        poll_interval=1,
        as_subflow=False,
    )
    out["manual"] = record(flow_run) | {"seconds": time.monotonic() - t0}
    step(f"manual run: {flow_run.state_type}")
emit()
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any PREFECT_* or CREDITFLOW_* setting, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CREDITFLOW_"))}
    no_proxy = ",".join(
        p for p in (env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost") if p
    )
    env.update(
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GX_ANALYTICS_ENABLED="False",
        PREFECT_HOME=str(prefect_home),
        NO_PROXY=no_proxy,
        no_proxy=no_proxy,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"--- {path.name}: (no output file)"
    text = [ln[:1500] for ln in path.read_text(errors="replace").splitlines()]
    return f"--- {path.name} (last {min(lines, len(text))} of {len(text)} lines):\n" + "\n".join(
        text[-lines:]
    )


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process started in its own session, and everything it started."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    # children may outlive the leader (a flow run subprocess, the server's workers)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextmanager
def _process(
    args: list[str], log: Path, env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group, so _stop reaches its children
        )
        try:
            yield proc
        finally:
            _stop(proc)


def _healthy(api_url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    try:
        with opener.open(f"{api_url}/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"true"
    except OSError:
        return False


@contextmanager
def _prefect_server(tmp: Path, diag) -> Iterator[str]:
    """``prefect server start`` on a free loopback port with a fresh SQLite database."""
    for attempt in range(3):  # another process may take the port between probe and bind
        port = _free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        log = tmp / f"server-{attempt}.log"
        diag.logs.append(log)
        env = _env(tmp / f"prefect-server-{attempt}", PREFECT_UI_ENABLED="false")
        args = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        with _process(args, log, env, tmp) as server:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while time.monotonic() < deadline and server.poll() is None:
                if _healthy(api_url):
                    break
                time.sleep(0.25)
            if server.poll() is None and _healthy(api_url):
                yield api_url
                return
        if "address already in use" not in log.read_text(errors="replace").lower():
            break
    pytest.fail(f"prefect server did not become healthy on {api_url}\n{diag()}")


class _Diagnostics:
    """The tails of every subprocess log, for assertion messages."""

    def __init__(self) -> None:
        self.logs: list[Path] = []

    def __call__(self) -> str:
        return "\n".join(_tail(p) for p in self.logs)


def test_served_deployment_is_scheduled_and_runs_on_a_real_server(tmp_path: Path) -> None:
    t_start = time.monotonic()
    home = tmp_path / "home"
    generate(
        GeneratorConfig(customers=300, days=3, start=date(2026, 1, 1), seed=7), home / "landing"
    )
    diag = _Diagnostics()
    serve_log, helper_log = tmp_path / "serve.log", tmp_path / "helper.log"
    helper = tmp_path / "schedule_helper.py"
    helper.write_text(HELPER)

    with _prefect_server(tmp_path, diag) as api_url:
        diag.logs.append(serve_log)
        serve_env = _env(
            tmp_path / "prefect-serve",
            PREFECT_API_URL=api_url,
            PREFECT_RUNNER_POLL_FREQUENCY="1",  # pick triggered runs up within a second
        )
        serve_args = [str(BIN / "creditflow"), "--home", str(home), "serve"]
        with _process(serve_args, serve_log, serve_env, tmp_path) as serve:
            diag.logs.append(helper_log)
            try:
                completed = subprocess.run(
                    [sys.executable, str(helper), DEPLOYMENT, "240"],
                    env=_env(tmp_path / "prefect-client", PREFECT_API_URL=api_url),
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=HELPER_TIMEOUT,
                )
            except subprocess.TimeoutExpired as exc:
                helper_log.write_text(f"{exc.stdout or ''}\n{exc.stderr or ''}")
                pytest.fail(f"the client helper timed out after {HELPER_TIMEOUT} s\n{diag()}")
            helper_log.write_text(completed.stdout + "\n" + completed.stderr)
            serve_alive = serve.poll() is None
    served_seconds = time.monotonic() - t_start

    result_lines = [ln for ln in completed.stdout.splitlines() if ln.startswith("RESULT ")]
    assert completed.returncode == 0 and result_lines, f"the client helper failed\n{diag()}"
    result = json.loads(result_lines[-1].removeprefix("RESULT "))
    assert "error" not in result, f"{result['error']}\n{diag()}"
    assert serve_alive, f"creditflow serve exited before the runs were done\n{diag()}"

    # --- the registered deployment and its schedule -------------------------------------------
    dep = result["deployment"]
    assert dep["name"] == "creditflow-nightly"
    assert dep["entrypoint"] == "creditflow.flows.nightly.nightly"
    assert dep["schedules"] == [
        {
            "type": "CronSchedule",
            "cron": "0 2 * * *",
            "timezone": "Asia/Shanghai",
            "day_or": True,
            "active": True,
        }
    ], diag()
    assert dep["paused"] is False
    assert dep["status"] == "READY", f"the served process is not polling\n{diag()}"
    assert dep["concurrency_limit"] == 1
    # serve bakes the resolved settings into the deployment, so scheduled runs use this home
    assert Path(dep["parameters"]["overrides"]["home"]) == home
    assert Path(dep["parameters"]["overrides"]["landing"]) == home / "landing"

    # --- the runs the server's scheduler created from it --------------------------------------
    upcoming = result["upcoming"]
    assert upcoming, f"the server's scheduler created no runs for the deployment\n{diag()}"
    starts = [datetime.fromisoformat(r["expected_start_time"]) for r in upcoming]
    for run, start in zip(upcoming, starts, strict=True):
        local = start.astimezone(SHANGHAI)
        assert (local.hour, local.minute, local.second) == (2, 0, 0), (run, local)
        assert run["auto_scheduled"] is True, run
        assert run["parameters"] == dep["parameters"], run
    assert all(b - a == timedelta(days=1) for a, b in pairwise(starts)), starts
    assert starts[0] > datetime.now(UTC) - timedelta(minutes=5), starts  # upcoming, not a backlog
    assert starts[0] - datetime.now(UTC) <= timedelta(days=1, minutes=5), starts

    # --- the two runs the served process executed ----------------------------------------------
    as_scheduled, manual = result["as_scheduled"], result.get("manual")
    assert as_scheduled["state_type"] == "COMPLETED", (
        f"as-scheduled run ended {as_scheduled['state']}: {as_scheduled['message']}\n{diag()}"
    )
    assert "run_date" not in as_scheduled["parameters"]
    assert datetime.fromisoformat(as_scheduled["expected_start_time"]) == datetime(
        2026, 1, 2, 2, 0, tzinfo=SHANGHAI
    )
    assert manual is not None and manual["state_type"] == "COMPLETED", (
        f"manual run ended {manual and manual['state']}: {manual and manual['message']}\n{diag()}"
    )
    assert manual["parameters"]["run_date"] == "2026-01-02"

    # --- what they published and recorded ----------------------------------------------------
    for d in ("2026-01-01", "2026-01-02"):
        part = home / "published" / "limit_updates" / f"dt={d}" / "part-0.parquet"
        assert part.is_file(), f"{part} missing\n{diag()}"
        limits = pl.read_parquet(part)
        assert limits.height >= 300 and limits["customer_id"].n_unique() == limits.height
        assert limits["effective_from"].is_not_null().all()
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            # only the two dates: a real 02:00 run could start if the test straddles 02:00
            """select run_date, status, trigger, flow_run_id from runs
               where run_date in ('2026-01-01', '2026-01-02') order by run_date, attempt"""
        ).fetchall()
    assert rows == [
        (date(2026, 1, 1), "SUCCESS", "schedule", as_scheduled["id"]),
        (date(2026, 1, 2), "SUCCESS", "manual", manual["id"]),
    ], f"{rows}\n{diag()}"

    # keep an eye on the cost of this test: the budget is about 90 s on two busy cores
    print(  # noqa: T201
        f"schedule test: {served_seconds:.0f} s; as-scheduled run {as_scheduled['seconds']:.1f} s, "
        f"manual run {manual['seconds']:.1f} s"
    )

"""The Dask cluster a distributed run uses (docs/scale_out.md).

``cluster(settings)`` yields a ``distributed.Client`` for ``execution = dask`` (an existing
scheduler) or ``local-cluster`` (a ``LocalCluster`` of worker processes started here), and
None for ``local``. While it is open, ``current_client()`` returns that client, so a
backfill's nights share one cluster without a client travelling through Prefect task
parameters (which Prefect would try to hash). ``client_for`` opens one for a step called
outside a ``cluster`` block.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from creditflow import OFFLINE_DEFAULTS
from creditflow.settings import Settings

if TYPE_CHECKING:
    from distributed import Client

# Worker processes inherit the environment at spawn time: nothing phones home from them, and
# OpenMP threads sleep instead of spinning while another process holds a core (spinning, a
# 0.3 s fit was measured at several seconds beside a busy process).
WORKER_ENVIRONMENT = {
    **OFFLINE_DEFAULTS,
    "OMP_WAIT_POLICY": "PASSIVE",
    # workers log each connection and plugin at INFO; what matters to a run is a warning
    "DASK_LOGGING__DISTRIBUTED": "warning",
}

_client: ContextVar[Client | None] = ContextVar("creditflow_dask_client", default=None)


def current_client() -> Client | None:
    """The client of the innermost open ``cluster`` block, if any."""
    return _client.get()


@contextmanager
def cluster(settings: Settings) -> Iterator[Client | None]:
    """A client for the configured cluster (None for local execution), closed on exit."""
    if not settings.distributed:
        yield None
        return
    for name, value in WORKER_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    from distributed import Client, LocalCluster

    if settings.execution == "dask":
        client = Client(settings.dask_scheduler, set_as_default=False)
        local = None
        try:
            _check_workers(client)
        except BaseException:
            client.close()
            raise
    else:
        # Loopback only: nothing listens beyond this machine. The scheduler's HTTP endpoint
        # starts even without a dashboard, on 8787 unless told otherwise; a free port lets two
        # clusters (a test beside a benchmark) run at once instead of failing on "in use".
        # the in-process scheduler logs every worker and client at INFO: noise in a run's log
        logging.getLogger("distributed").setLevel(logging.WARNING)
        local = LocalCluster(
            n_workers=settings.dask_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
        client = Client(local, set_as_default=False)
    token = _client.set(client)
    try:
        yield client
    finally:
        _client.reset(token)
        client.close()
        if local is not None:
            local.close()


class WorkerMismatch(RuntimeError):
    """A worker runs other creditflow code than the driver: its rows would not be the ones the
    run id (which names the driver's code version) promises."""


def _check_workers(client: Client) -> None:
    """Every worker of an existing cluster runs the driver's code version (a LocalCluster's
    workers are started from this very checkout, so only ``dask`` clusters are asked)."""
    from creditflow.versioning import code_version

    mine = code_version()
    theirs = client.run(code_version)
    other = {worker: version for worker, version in theirs.items() if version != mine}
    if other:
        raise WorkerMismatch(
            f"the driver runs creditflow {mine}, but workers run other code: {other}; "
            "install the same version on every worker (and restart them)"
        )


@contextmanager
def client_for(settings: Settings) -> Iterator[Client | None]:
    """The open cluster's client, or a cluster of the settings' own for the duration."""
    if not settings.distributed:
        yield None
        return
    open_client = current_client()
    if open_client is not None:
        yield open_client
        return
    with cluster(settings) as client:
        yield client


def worker_threads() -> int:
    """Threads this Dask worker runs tasks on (1 outside a worker): DuckDB and XGBoost on a
    worker use no more, so tasks sharing a machine do not oversubscribe its cores."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):
        return 1


def log_shards(stage: str, rows: list[int], seconds: list[float], note: str = "") -> None:
    """One line per sharded stage: rows, and the slowest and summed task time (the figures
    docs/scale_out.md scales from). A standard logger, so the steps stay free of Prefect;
    a flow run shows it with PREFECT_LOGGING_EXTRA_LOGGERS=creditflow."""
    logging.getLogger("creditflow.execution").info(
        "%s: %d shards, %d rows (largest shard %d), task seconds max %.2f, sum %.2f%s",
        stage,
        len(rows),
        sum(rows),
        max(rows, default=0),
        max(seconds, default=0.0),
        sum(seconds),
        f"; {note}" if note else "",
    )

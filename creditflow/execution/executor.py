"""The execution seam: where a stage's kernel runs, never what it computes.

A step hands the executor a stage (transforms.inputs.Stage: its kernel and the rows it
reads, declared beside its SQL) and gets the stage's rows back. ``InProcess`` runs the kernel
on the warehouse connection itself. ``DaskExecutor`` (execution.dask_executor) exports the
declared inputs split by a hash of the shard key, maps the kernel over the shards on a Dask
cluster and gathers the rows; the step then applies them exactly as it applies the
in-process rows, so a cluster run publishes the same rows. Training (``fit``) and a
backfill's delivery checks go through the same object, so the Dask client is the one
distribution mechanism and no step asks where it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from creditflow.landing import Delivery
from creditflow.models.recipe import FitFn, fit
from creditflow.settings import Settings
from creditflow.transforms.inputs import Stage, run_in_process


class Executor(Protocol):
    """What a step needs of wherever the work runs."""

    # ``models.recipe.fit``, wherever the boosting runs
    fit: FitFn

    def run(self, con: duckdb.DuckDBPyConnection, stage: Stage, d: date, **params: Any) -> pa.Table:
        """The stage's rows for ``d`` from the warehouse behind ``con``."""
        ...

    def check_deliveries(self, landing: Path, dates: list[date]) -> dict[date, Delivery]:
        """Deliveries checked ahead of their nights (those that passed); empty when checking
        ahead would gain nothing (each night checks its own)."""
        ...


class InProcess:
    """Everything in this process, on the warehouse connection."""

    fit: FitFn = staticmethod(fit)
    run = staticmethod(run_in_process)

    def check_deliveries(self, landing: Path, dates: list[date]) -> dict[date, Delivery]:
        return {}


@contextmanager
def executor_for(settings: Settings) -> Iterator[Executor]:
    """The executor the settings name; on a cluster, the open one (a backfill's) when there
    is one, else a cluster of the settings' own for the duration."""
    if settings.execution == "local":
        yield InProcess()
        return
    from creditflow.execution.cluster import client_for
    from creditflow.execution.dask_executor import DaskExecutor

    with client_for(settings) as client:
        yield DaskExecutor(client, shards=settings.shards, root=settings.shard_dir)

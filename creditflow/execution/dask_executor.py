"""The Dask executor: a stage's kernel mapped over hash shards on a cluster, the same SQL and
Python as in process.

For a stage and a date the driver (which holds the warehouse) runs the stage's ``prepare``
on the warehouse, writes every declared slice split by shard (execution.shards), brings the
shard store up to the date for the declared dated windows (execution.shard_store: one new
date per table on an ordinary night), and splits the per-customer arguments (tonight's
features, for the limits) by shard. One Dask task per shard then builds an in-memory DuckDB
with the stage's tables, loads its shard, runs ``prepare`` and the kernel there, and writes
its rows as Parquet; the driver gathers them. Population-level values (the reference of
reason codes) are computed once by the step and travel to every shard unchanged.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from creditflow.execution.cluster import log_shards, worker_threads
from creditflow.execution.dask_fit import fit_on_cluster
from creditflow.execution.shard_store import Valid, load_dated, sync
from creditflow.execution.shards import export_slices, load_slices, shards_of, worker_connection
from creditflow.landing import Delivery, checked_or_none
from creditflow.models.dataset import Frame
from creditflow.models.recipe import FitFn
from creditflow.transforms.inputs import Stage, run_in_process

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class ShardJob:
    """One shard's share of a stage: plain values and paths, so it pickles to any worker."""

    stage: Stage
    shard: int
    business_date: date
    work: Path
    store: Path
    valid: Valid


def run_shard(
    job: ShardJob, shared: dict[str, Any], sharded: dict[str, Any]
) -> tuple[int, float, str]:
    """Run the stage's kernel on one shard (on a Dask worker); write its rows as Parquet.
    Returns the rows, seconds and the file."""
    t0 = time.perf_counter()
    con = worker_connection(worker_threads())
    try:
        job.stage.setup(con)
        load_slices(con, job.work / "in", tuple(s.table for s in job.stage.slices), job.shard)
        load_dated(con, job.store, job.valid, job.shard, job.stage.dated)
        table = run_in_process(con, job.stage, job.business_date, **shared, **sharded)
    finally:
        con.close()
    path = job.work / "out" / f"shard={job.shard}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return table.num_rows, time.perf_counter() - t0, str(path)


def split_by_shard(value: Any, shards: int) -> list[Any]:
    """A per-customer argument cut into the shards' parts by its customer ids: a Frame (the
    features) or a DataFrame with a customer_id column (the scores)."""
    if value is None:
        return [None] * shards
    if isinstance(value, Frame):
        which = shards_of(value.customer_id, shards)
        return [
            replace(
                value,
                x=value.x[rows],
                customer_id=value.customer_id[rows],
                observation_date=value.observation_date[rows],
                y=None if value.y is None else value.y[rows],
            )
            for rows in (np.flatnonzero(which == k) for k in range(shards))
        ]
    if isinstance(value, pl.DataFrame):
        which = shards_of(value["customer_id"].to_numpy(), shards)
        return [value.filter(pl.Series(which == k)) for k in range(shards)]
    raise TypeError(f"cannot split a {type(value).__name__} by shard")


class DaskExecutor:
    """Shards on the cluster behind ``client``; inputs and outputs under ``root``."""

    def __init__(self, client: Client, *, shards: int, root: Path) -> None:
        self.client = client
        self.shards = shards
        self.root = root
        self.fit: FitFn = partial(fit_on_cluster, client)

    def run(self, con: duckdb.DuckDBPyConnection, stage: Stage, d: date, **params: Any) -> pa.Table:
        shared = {k: v for k, v in params.items() if k not in stage.sharded_args}
        if stage.prepare is not None:
            stage.prepare(con, d, **shared)
        work = self.root / stage.name / f"dt={d.isoformat()}"
        export_slices(con, work / "in", stage.slices, {"d": d, **shared}, self.shards)
        shutil.rmtree(work / "out", ignore_errors=True)  # a rerun's rows replace the last ones
        valid, copied = (
            sync(con, self.root / "store", d, self.shards, stage.dated) if stage.dated else ({}, 0)
        )
        parts = {k: split_by_shard(params.get(k), self.shards) for k in stage.sharded_args}
        # large values go to the workers once, not inside every task's graph
        shared_future = self.client.scatter(shared, broadcast=True) if shared else {}
        futures = []
        for k in range(self.shards):
            job = ShardJob(stage, k, d, work, self.root / "store", valid)
            own = {
                name: None if p[k] is None else self.client.scatter(p[k])
                for name, p in parts.items()
            }
            futures.append(self.client.submit(run_shard, job, shared_future, own, pure=False))
        done = self.client.gather(futures)
        note = f"{copied} table-dates copied to the shard store" if stage.dated else ""
        log_shards(stage.name, [n for n, _, _ in done], [s for _, s, _ in done], note=note)
        table = pa.concat_tables(
            [pq.read_table(path) for _, _, path in done], promote_options="permissive"
        )
        # the inputs were this night's working copy; the shards' rows stay (docs/scale_out.md)
        shutil.rmtree(work / "in", ignore_errors=True)
        return table

    def check_deliveries(self, landing: Path, dates: list[date]) -> dict[date, Delivery]:
        """Every date's delivery checked at once, one task per date: checking depends on
        nothing but the date's own folder (the rest of ingest stays in date order)."""
        if not dates:
            return {}
        found = self.client.gather(
            self.client.map(checked_or_none, [landing] * len(dates), dates, pure=False)
        )
        return {d: got for d, got in zip(dates, found, strict=True) if got is not None}

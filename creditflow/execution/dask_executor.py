"""The per-customer stages in customer shards on a Dask cluster: features, scores, reason
codes and limits, with the same SQL and Python as the local run.

The driver writes tonight's snapshot once, split by a hash of customer_id: every row the
feature and limit-input SQL reads for the date (customer versions up to it, 90 days of
behaviour and repayment events, 180 days of ledger state, loans, the previous evaluation's
decisions). A feature task per shard runs ``features`` on its own in-memory DuckDB and writes
Parquet; the driver gathers the matrix for what is population-level (the drift check,
training, the reference of reason codes). A limits task per shard then scores, decides and
explains its customers against that one population reference (the mean contributions of
tonight's safest tenth: per shard it would be each shard's own safest tenth, and reasons
would differ from the local run's), and writes its decisions; the driver stores them and
publishes the partition as the local run does.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import polars as pl

from creditflow.execution import log_shards, worker_threads
from creditflow.models.dataset import Frame, encode
from creditflow.models.recipe import predict
from creditflow.models.registry import Registry
from creditflow.models.scoring import reference_contributions
from creditflow.policy import LimitPolicy
from creditflow.settings import Settings
from creditflow.shard_store import Valid, load_dated, sync
from creditflow.shards import Slice, export_slices, load_slices, worker_connection
from creditflow.transforms.features import features
from creditflow.warehouse import ensure_schema

if TYPE_CHECKING:
    from distributed import Client

    from creditflow.limits import Champion

# What transforms/sql/features.sql and limit_inputs.sql read for date $d, by customer, besides
# the dated history in the shard store: every customer version and loan up to the date (the
# features count all of them), and the previous evaluation's decisions.
SLICES = (
    Slice("customers", "select *, customer_id as shard_key from customers where dt <= $d"),
    Slice("loans", "select *, customer_id as shard_key from loans where dt <= $d"),
    Slice(
        "limit_decisions",
        """select *, customer_id as shard_key from limit_decisions
           where dt = (select max(dt) from limit_decisions where dt < $d)""",
    ),
)
TABLES = tuple(s.table for s in SLICES)


@dataclass(frozen=True)
class ShardedFrame(Frame):
    """Tonight's features gathered from the shards, with where the shards' own files are:
    the limits step reuses them instead of building the features again."""

    snapshot: Snapshot | None = None
    as_of: date = date.min


@dataclass(frozen=True)
class Snapshot:
    """Where a night's shard inputs are: tonight's export and the store's valid dates."""

    work: Path
    store: Path
    dated: Valid


def _shard_con(snapshot: Snapshot, shard: int) -> duckdb.DuckDBPyConnection:
    from creditflow.limits import ensure_limits_schema

    con = worker_connection(worker_threads())
    ensure_schema(con)
    ensure_limits_schema(con)
    load_slices(con, snapshot.work / "in", TABLES, shard)
    load_dated(con, snapshot.store, snapshot.dated, shard)
    return con


@dataclass(frozen=True)
class FeatureShardJob:
    shard: int
    observation_date: date
    snapshot: Snapshot


def features_shard(job: FeatureShardJob) -> tuple[int, float]:
    """The features of one shard's customers (on a Dask worker), written as Parquet.
    Returns the shard's customers and seconds."""
    t0 = time.perf_counter()
    con = _shard_con(job.snapshot, job.shard)
    try:
        path = job.snapshot.work / "features" / f"shard={job.shard}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = features(con, job.observation_date).to_arrow_table()
        pl.from_arrow(table).write_parquet(path)  # type: ignore[union-attr]
        return table.num_rows, time.perf_counter() - t0
    finally:
        con.close()


def sharded_population(
    con: duckdb.DuckDBPyConnection, d: date, *, client: Client, shards: int, root: Path
) -> ShardedFrame:
    """``population(con, d)`` built shard by shard on the cluster: the same matrix, in the
    same (customer_id) order."""
    from creditflow.limits import ensure_limits_schema

    ensure_limits_schema(con)  # a first night has no decisions table yet
    work = root / "customers" / f"dt={d.isoformat()}"
    export_slices(con, work / "in", SLICES, {"d": d}, shards)
    dated, copied = sync(con, root / "store", d, shards)
    snapshot = Snapshot(work, root / "store", dated)
    jobs = [FeatureShardJob(k, d, snapshot) for k in range(shards)]
    done = client.gather(client.map(features_shard, jobs, pure=False))
    log_shards(
        "features",
        [n for n, _ in done],
        [s for _, s in done],
        note=f"{copied} table-dates copied to the shard store",
    )
    files = [work / "features" / f"shard={k}.parquet" for k in range(shards)]
    table = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    frame = encode(table.sort("customer_id"))
    return ShardedFrame(
        frame.x, frame.names, frame.customer_id, frame.observation_date, frame.y, snapshot, d
    )


@dataclass(frozen=True)
class LimitShardJob:
    shard: int
    business_date: date
    run_id: str
    policy: LimitPolicy
    models_dir: Path
    champion: str | None
    reference: np.ndarray | None
    snapshot: Snapshot


def limits_shard(job: LimitShardJob) -> tuple[int, int, float]:
    """Score, decide and explain one shard's customers (on a Dask worker); write the
    decisions as Parquet. Returns its customers, how many rows needed exact contributions
    for their reason codes, and seconds."""
    from creditflow.limits import Champion, decide_limits

    t0 = time.perf_counter()
    champion = None
    if job.champion is not None:
        booster, card = Registry(job.models_dir).load(job.champion)
        champion = Champion(job.champion, booster, list(card["features"]["names"]))
    con = _shard_con(job.snapshot, job.shard)
    try:
        frame = None
        if champion is not None:
            raw = pl.read_parquet(job.snapshot.work / "features" / f"shard={job.shard}.parquet")
            frame = encode(raw)
        decided, computed = decide_limits(
            con, job.business_date, job.policy, champion, job.run_id, frame, job.reference
        )
        path = job.snapshot.work / "decisions" / f"shard={job.shard}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        decided.write_parquet(path)
        return decided.height, computed, time.perf_counter() - t0
    finally:
        con.close()


def sharded_decisions(
    con: duckdb.DuckDBPyConnection,
    d: date,
    policy: LimitPolicy,
    champion: Champion | None,
    run_id: str,
    frame: Frame | None,
    *,
    client: Client,
    shards: int,
    root: Path,
    models_dir: Path,
) -> tuple[pl.DataFrame, int]:
    """``decide_limits`` for the whole book, shard by shard on the cluster."""
    snapshot = frame.snapshot if isinstance(frame, ShardedFrame) and frame.as_of == d else None
    if snapshot is None or not (snapshot.work / "features").is_dir():
        frame = sharded_population(con, d, client=client, shards=shards, root=root)
        snapshot = frame.snapshot
    assert snapshot is not None and frame is not None
    reference = None
    if champion is not None and len(frame.customer_id):
        # population-level, so computed once here: the local run's reference exactly
        pd_ = predict(champion.booster, frame.x, champion.names).astype(float)
        reference = reference_contributions(champion.booster, frame.x, champion.names, pd_)
    jobs = [
        LimitShardJob(
            k,
            d,
            run_id,
            policy,
            models_dir,
            champion.version if champion else None,
            reference,
            snapshot,
        )
        for k in range(shards)
    ]
    done = client.gather(client.map(limits_shard, jobs, pure=False))
    log_shards("score and limits", [n for n, _, _ in done], [s for _, _, s in done])
    files = [snapshot.work / "decisions" / f"shard={k}.parquet" for k in range(shards)]
    decided = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    # the snapshot and features were this night's working copies; the decisions stay as
    # the shards' state files (docs/scale_out.md)
    for scratch in ("in", "features"):
        shutil.rmtree(snapshot.work / scratch, ignore_errors=True)
    return decided.sort("customer_id"), sum(c for _, c, _ in done)


def population_for(settings: Settings, d: date) -> Frame:
    """Tonight's model input for the configured execution: ``population`` from the warehouse
    locally, ``sharded_population`` on the cluster otherwise."""
    from creditflow.execution import client_for
    from creditflow.models.dataset import population
    from creditflow.warehouse import open_warehouse

    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        if not settings.distributed:
            return population(con, d)
        with client_for(settings) as client:
            assert client is not None
            return sharded_population(
                con, d, client=client, shards=settings.shards, root=settings.shard_dir
            )

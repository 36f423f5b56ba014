"""The pipeline on a real Dask cluster (distributed.LocalCluster, worker processes) publishes
what the local run publishes, row for row."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from creditflow.execution import cluster as clusters
from creditflow.execution.shard_store import sync
from creditflow.execution.shards import shard_of, shard_sql
from creditflow.flows.backfill import backfill
from creditflow.flows.nightly import nightly
from creditflow.models.metrics import discrimination
from creditflow.models.recipe import Recipe, fit, predict
from creditflow.settings import Settings, load_settings
from creditflow.transforms.features import FEATURES
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.champions import hand_champion

# the cluster tests start worker processes: one xdist worker runs them, beside nothing heavy
pytestmark = [pytest.mark.xdist_group("dask"), pytest.mark.usefixtures("prefect_harness")]

BOOK = GeneratorConfig(customers=400, days=7, start=date(2026, 2, 1), seed=12)
FIRST = BOOK.start
LAST = FIRST + timedelta(days=BOOK.days - 2)  # the last day is the night with a champion
CHAMPION_NIGHT = LAST + timedelta(days=1)
# columns of the runs listing that record when and how long, not what was computed
RUN_CLOCK = ("started_at", "finished_at", "durations", "flow_run_id")


def _overrides(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json")


def _hand_champion(settings: Settings, frame_home: Settings) -> None:
    """The same hand-made champion in a home's registry (as in test_nightly), trained on the
    features of ``frame_home``."""
    hand_champion(frame_home.warehouse_path, settings.models_dir, LAST)


def _run(settings: Settings) -> list[dict]:
    seen: list[date] = []
    guard = threading.Lock()  # what the CLI's progress callback holds: it must not travel

    def on_date(d: date, result: dict | None) -> None:
        with guard:
            if result is not None:
                seen.append(d)

    results = backfill(start=FIRST, end=LAST, overrides=_overrides(settings), on_date=on_date)
    assert seen == [FIRST + timedelta(days=i) for i in range(BOOK.days - 1)]
    return results


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Settings, dict]:
    """The same book run locally and on a two-process LocalCluster in four shards."""
    import time

    landing = generate(BOOK, tmp_path_factory.mktemp("dask_book") / "landing").landing
    local = load_settings(home=tmp_path_factory.mktemp("local"), landing=landing, data_docs=False)
    dask = load_settings(
        home=tmp_path_factory.mktemp("dask"),
        landing=landing,
        data_docs=False,
        execution="local-cluster",
        dask_workers=2,
        shards=4,
    )
    seconds: dict[str, float] = {}
    for name, settings in (("local", local), ("dask", dask)):
        t0 = time.perf_counter()
        _run(settings)
        seconds[f"{name}_backfill"] = time.perf_counter() - t0
    for name, settings in (("local", local), ("dask", dask)):
        _hand_champion(settings, local)
        t0 = time.perf_counter()
        nightly(run_date=CHAMPION_NIGHT, overrides=_overrides(settings))
        seconds[f"{name}_champion_night"] = time.perf_counter() - t0
    return local, dask, seconds


def _table(published: Path, table: str) -> pl.DataFrame:
    rows = pl.read_parquet(published / table, hive_partitioning=True)
    if table == "runs":
        rows = rows.drop(*RUN_CLOCK)
    return rows.sort(rows.columns, nulls_last=True)


def test_published_tables_equal_the_local_run_row_for_row(
    homes: tuple[Settings, Settings, dict],
) -> None:
    """Every published table, every date: the cluster's rows are the local run's rows."""
    local, dask, seconds = homes
    tables = sorted(
        p.name
        for p in local.published_dir.iterdir()
        if p.is_dir() and not p.name.startswith(("_", "."))
    )
    tables = [t for t in tables if t != "data_docs"]
    assert {"limit_updates", "loan_delinquency", "delinquency_summary", "roll_rates", "vintage",
            "delinquency_rates", "data_quality", "runs"} <= set(tables)  # fmt: skip
    assert tables == sorted(
        p.name
        for p in dask.published_dir.iterdir()
        if p.is_dir() and not p.name.startswith(("_", "."))
    )
    for table in tables:
        result, expected = _table(dask.published_dir, table), _table(local.published_dir, table)
        # roll rates need a date 30 days back: a week-long book has none, on either side
        assert expected.height > 0 or table == "roll_rates", table
        assert_frame_equal(result, expected)
    # run ids are content addresses of inputs, code and settings that change what is computed;
    # where the work ran is not among them, so the two runs carry the same ids
    updates = _table(dask.published_dir, "limit_updates")
    night = updates.filter(pl.col("dt") == CHAMPION_NIGHT)
    assert (night["model_version"] == "m-hand").all()
    adverse = night.filter(
        pl.col("action").is_in(["DECREASE", "FREEZE"])
        & pl.col("policy_rule").is_in(["band", "expected_loss", "model.freeze"])
    )
    assert adverse.height > 0 and (adverse["reason_codes"].list.len() > 0).all()
    print(f"\nwall seconds, local vs LocalCluster(2 processes, 4 shards): {seconds}")  # noqa: T201


def test_shards_hold_each_customer_once_and_agree_with_sql(
    homes: tuple[Settings, Settings, dict],
) -> None:
    """A night's per-shard decision files partition its customers (the working copies are
    gone); SQL and Python put a key in the same shard."""
    _, dask, _ = homes
    work = dask.shard_dir / "limits" / f"dt={CHAMPION_NIGHT}"
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    parts = [pl.read_parquet(work / "out" / f"shard={k}.parquet") for k in range(4)]
    for k, part in enumerate(parts):
        assert part.height > 0
        assert {shard_of(c, 4) for c in part["customer_id"]} == {k}
    ids = pl.concat(parts)["customer_id"]
    published = pl.read_parquet(
        dask.published_dir / "limit_updates" / f"dt={CHAMPION_NIGHT}" / "part-0.parquet"
    )
    assert ids.n_unique() == ids.len() == published.height
    ledger = dask.shard_dir / "ledger" / f"dt={LAST}"
    assert sorted(p.name for p in ledger.iterdir()) == ["out"]
    keys = ["C000001", "C123456", "x", "客户-7", ""]
    with duckdb.connect() as con:
        in_sql = [
            con.execute(f"select {shard_sql('$k', 8)}", {"k": k}).fetchall()[0][0] for k in keys
        ]
    assert in_sql == [shard_of(k, 8) for k in keys]


def test_the_shard_store_copies_a_date_once_and_again_when_stale(
    homes: tuple[Settings, Settings, dict],
) -> None:
    """Each night copied one date per table; a copy whose version no longer matches the
    warehouse (a redelivery, a rerun ledger, another shard count) is copied again."""
    _, dask, _ = homes
    store = dask.shard_dir / "store"
    with duckdb.connect(str(dask.warehouse_path)) as con:
        valid, copied = sync(con, store, CHAMPION_NIGHT, 4, FEATURES.dated)
        assert copied == 0  # every night already copied its own dates
        days = BOOK.days
        assert {t: len(v) for t, v in valid.items()} == {
            "behaviour": days, "transactions": days, "loan_daily": days,
        }  # fmt: skip
        marker = store / "behaviour" / f"dt={FIRST}" / "_version"
        marker.write_text("4:a delivery since replaced", encoding="utf-8")
        assert sync(con, store, CHAMPION_NIGHT, 4, FEATURES.dated)[1] == 1
        assert (
            sync(con, store, CHAMPION_NIGHT, 2, FEATURES.dated)[1] == 3 * days
        )  # other shards: all again
        assert sorted(p.name for p in (store / "behaviour" / f"dt={FIRST}").iterdir()) == [
            "_version", "shard=0", "shard=1",
        ]  # fmt: skip


def test_execution_dask_needs_a_scheduler() -> None:
    with pytest.raises(ValueError, match="CREDITFLOW_DASK_SCHEDULER"):
        Settings(execution="dask")
    assert Settings(execution="dask", dask_scheduler="tcp://10.0.0.5:8786").distributed
    assert not Settings().distributed  # the single-machine default is unchanged


def test_training_on_the_cluster_matches_the_local_fit_within_tolerance() -> None:
    """xgboost.dask with the recipe's seed and parameters: out-of-time AUC within 0.02 of the
    local fit (histogram sketches and row sampling differ per worker, so not bit-identical)."""
    from distributed import Client, LocalCluster

    from creditflow.execution.dask_fit import fit_on_cluster

    rng = np.random.default_rng(7)
    n, k = 6000, 12
    x = rng.normal(size=(n, k))
    x[rng.random((n, k)) < 0.05] = np.nan  # missing values, as real features have
    logit = 1.2 * np.nan_to_num(x[:, 0]) - 0.8 * np.nan_to_num(x[:, 1]) + 0.5 * np.nan_to_num(x[:, 2]) ** 2 - 2.5  # fmt: skip
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    names = [f"f{i}" for i in range(k)]
    train, oot = slice(0, 4500), slice(4500, n)
    groups = np.arange(4500) // 3  # customers with several observations
    recipe = Recipe(rounds=200)
    local, _ = fit(recipe, x[train], y[train], names, {"f0": 1}, groups=groups)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        remote, info = fit_on_cluster(client, recipe, x[train], y[train], names, {"f0": 1}, groups=groups)  # fmt: skip
        # the same cluster as an existing one (execution = dask): its workers run this code
        existing = Settings(execution="dask", dask_scheduler=cluster.scheduler_address)
        with clusters.cluster(existing) as connected:
            assert connected is not None and clusters.current_client() is connected
            assert len(connected.scheduler_info()["workers"]) == 2
        assert clusters.current_client() is None
    expected = discrimination(y[oot], predict(local, x[oot], names))
    result = discrimination(y[oot], predict(remote, x[oot], names))
    assert abs(result.auc - expected.auc) < 0.02
    assert abs(result.ks - expected.ks) < 0.05
    assert info["calibration_a"] > 0  # calibrated the same way, on the same validation rows
    assert remote.attr("calibration_a") is not None

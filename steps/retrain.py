"""The retrain step: train a challenger for a business date when due, apply the gate, publish
the decision in ``model_runs`` (IO at the edge; training is models.training)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from creditflow.execution import executor_for
from creditflow.models.dataset import Frame, like_training, population
from creditflow.models.metrics import psi_against
from creditflow.models.monitoring import RetrainPolicy, retrain_due
from creditflow.models.recipe import predict
from creditflow.models.registry import Gate, Registry
from creditflow.models.training import ModelRun, train_challenger
from creditflow.publish import PublishedPartition, publish_partition
from creditflow.settings import Settings
from creditflow.warehouse import open_warehouse, transaction

# the contract's model_runs columns, then additions
MODEL_RUN_COLUMNS = (
    "model_version", "train_start", "train_end", "oot_start", "oot_end", "n_train", "bad_rate",
    "auc", "ks", "gini", "brier", "psi", "promoted", "decision_reason",
    "psi_tonight", "champion_version", "champion_auc",
)  # fmt: skip


def publish_model_run(run: ModelRun, settings: Settings, run_id: str) -> PublishedPartition:
    row = {c: [getattr(run, c)] for c in MODEL_RUN_COLUMNS} | {"run_id": [run_id]}
    frame = pl.DataFrame(row, schema_overrides={c: pl.Date for c in ("train_start", "train_end", "oot_start", "oot_end")} | {
        "model_version": pl.String, "bad_rate": pl.Float64, "auc": pl.Float64, "ks": pl.Float64, "gini": pl.Float64,
        "brier": pl.Float64, "psi": pl.Float64, "psi_tonight": pl.Float64, "champion_version": pl.String,
        "champion_auc": pl.Float64,
    })  # fmt: skip
    with duckdb.connect() as con:
        con.register("model_run", frame.to_arrow())
        return publish_partition(
            con.sql("select * from model_run"), settings.published_dir, "model_runs", run.dt
        )


TRAINING_LOG_DDL = """
create table if not exists training_log (
    dt DATE not null,
    model_version VARCHAR,          -- null when nothing was fitted (too little history)
    promoted BOOLEAN not null,
    decision_reason VARCHAR not null,
    due_reason VARCHAR,
    run_id VARCHAR not null
)"""


@dataclass(frozen=True)
class RetrainOutcome:
    due: bool
    due_reason: str
    champion: str | None  # in force before tonight's decision
    tonight_psi: float | None
    run: ModelRun | None = None


def gate_from(settings: Settings) -> Gate:
    return Gate(
        min_auc=settings.gate_min_auc,
        max_psi=settings.gate_max_psi,
        max_auc_drop=settings.gate_max_auc_drop,
    )


def tonight_psi(
    con: duckdb.DuckDBPyConnection,
    d: date,
    registry: Registry,
    champion: str | None,
    frame: Frame | None = None,
) -> float | None:
    """Tonight's scores of customers like the training ones against the training scores."""
    if champion is None:
        return None
    booster, card = registry.load(champion)
    bins = card.get("score_bins")
    frame = frame if frame is not None else population(con, d)
    if bins is None or frame.names != card["features"]["names"] or len(frame.customer_id) == 0:
        return None
    mask = like_training(frame)
    if not mask.any():
        return None
    return psi_against(bins["edges"], bins["shares"], predict(booster, frame.x[mask], frame.names))


def _log(
    con: duckdb.DuckDBPyConnection, run: ModelRun, due_reason: str | None, run_id: str
) -> None:
    con.execute(TRAINING_LOG_DDL)
    with transaction(con):
        con.execute("delete from training_log where dt = $d", {"d": run.dt})
        con.execute(
            "insert into training_log values ($d, $v, $p, $r, $due, $run)",
            {"d": run.dt, "v": run.model_version, "p": run.promoted, "r": run.decision_reason, "due": due_reason, "run": run_id},
        )  # fmt: skip


def retrain_if_due(
    settings: Settings, d: date, *, run_id: str, frame: Frame | None = None
) -> RetrainOutcome:
    """The nightly step: train a challenger when due (weekly, on drift, or without a champion).
    ``frame``: tonight's features, when the night already built them."""
    registry = Registry(settings.models_dir)
    champion = registry.champion_before(d)  # tonight's own decision is not yet taken
    policy = RetrainPolicy(settings.retrain_every_days, settings.retrain_psi)
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        con.execute(TRAINING_LOG_DDL)
        rows = con.execute(
            "select max(dt) from training_log where dt < $d and model_version is not null", {"d": d}
        ).fetchall()
        psi_now = tonight_psi(con, d, registry, champion, frame)
        due, why = retrain_due(
            d, champion=champion, last_trained=rows[0][0], tonight_psi=psi_now, policy=policy
        )
        if not due:
            con.execute("delete from training_log where dt = $d", {"d": d})
            return RetrainOutcome(False, why, champion, psi_now)
        with executor_for(settings) as executor:
            run = train_challenger(con, d, registry, gate=gate_from(settings), fit=executor.fit)
        _log(con, run, why, run_id)
    publish_model_run(run, settings, run_id)
    return RetrainOutcome(True, why, champion, psi_now, run)


def retrain(
    settings: Settings, business_date: date, *, run_id: str | None = None
) -> tuple[ModelRun, PublishedPartition]:
    """Train a challenger on what the warehouse knows by the date, apply the gate, publish model_runs."""
    run_id = run_id or f"train-{business_date.isoformat()}"
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        with executor_for(settings) as executor:
            run = train_challenger(
                con,
                business_date,
                Registry(settings.models_dir),
                gate=gate_from(settings),
                fit=executor.fit,
            )
        _log(con, run, "by hand", run_id)
    return run, publish_model_run(run, settings, run_id)

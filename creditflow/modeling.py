"""Retrain the credit model for a business date and publish the decision (IO at the edge)."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from creditflow.catalog import PublishedPartition, publish_partition
from creditflow.models.registry import Registry
from creditflow.models.training import ModelRun, train_challenger
from creditflow.settings import Settings
from creditflow.warehouse import open_warehouse

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
    con = duckdb.connect()
    con.register("model_run", frame.to_arrow())
    return publish_partition(
        con.sql("select * from model_run"), settings.published_dir, "model_runs", run.dt
    )


def retrain(
    settings: Settings, business_date: date, *, run_id: str | None = None
) -> tuple[ModelRun, PublishedPartition]:
    """Train a challenger on what the warehouse knows by the date, apply the gate, publish model_runs."""
    run_id = run_id or f"train-{business_date.isoformat()}"
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        run = train_challenger(con, business_date, Registry(settings.models_dir))
    return run, publish_model_run(run, settings, run_id)

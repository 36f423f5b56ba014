"""Train a challenger on matured history, check it out of time, and promote it only if it earns it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date

import duckdb
import numpy as np
import polars as pl

from creditflow.models.dataset import (
    encode,
    labelled,
    last_matured,
    like_training,
    observation_dates,
    population,
)
from creditflow.models.metrics import deciles, discrimination, psi, roc_points, score_bins
from creditflow.models.recipe import FitFn, Recipe, predict
from creditflow.models.recipe import fit as fit_recipe
from creditflow.models.registry import Gate, Registry
from creditflow.transforms.features import LABEL_DPD_THRESHOLD, LABEL_WINDOW_DAYS
from creditflow.transforms.ledger import ensure_ledger_schema
from creditflow.versioning import code_version

OOT_DATES = 4  # the latest matured weekly observation dates are the out-of-time window
MIN_TRAIN_DATES = 4


@dataclass(frozen=True)
class ModelRun:
    """One training and its decision: a row of the published model_runs table."""

    dt: date
    promoted: bool
    decision_reason: str
    model_version: str | None = None
    train_start: date | None = None
    train_end: date | None = None
    oot_start: date | None = None
    oot_end: date | None = None
    n_train: int = 0
    bad_rate: float | None = None
    auc: float | None = None
    ks: float | None = None
    gini: float | None = None
    brier: float | None = None
    psi: float | None = None
    psi_tonight: float | None = None
    champion_version: str | None = None
    champion_auc: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def matured_observation_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The weekly observation dates whose labels have matured; the last OOT_DATES of them
    are the out-of-time window."""
    ensure_ledger_schema(con)  # a new warehouse has no ledger yet: then there is nothing to learn
    first = con.execute("select min(dt) from ledger_runs").fetchall()[0][0]
    matured = last_matured(con)
    return observation_dates(first, matured) if first and matured else []


def train_challenger(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    registry: Registry,
    *,
    recipe: Recipe | None = None,
    gate: Gate | None = None,
    fit: FitFn = fit_recipe,
) -> ModelRun:
    """Train on matured observations up to ``as_of``, evaluate out of time, apply the gate.
    ``fit``: the recipe's fit, or the same recipe where an executor runs it (a cluster)."""
    recipe, gate = recipe or Recipe(), gate or Gate()
    dates = matured_observation_dates(con)
    if len(dates) < MIN_TRAIN_DATES + OOT_DATES:
        return _no_model(
            as_of,
            f"too little matured history: {len(dates)} observation dates, need {MIN_TRAIN_DATES + OOT_DATES}",
        )
    oot_dates, train_dates = dates[-OOT_DATES:], dates[:-OOT_DATES]
    table = labelled(con, dates)
    train_df = table.filter(pl.col("observation_date") < oot_dates[0])
    oot_df = table.filter(pl.col("observation_date") >= oot_dates[0])
    train, oot = encode(train_df), encode(oot_df)
    assert train.y is not None and oot.y is not None
    if train.y.min() == train.y.max() or oot.y.min() == oot.y.max():
        return _no_model(as_of, "the matured history has no bads (or no goods) to learn from")

    booster, info = fit(recipe, train.x, train.y, train.names, train.monotone, train.customer_id)
    oot_pd = predict(booster, oot.x, oot.names)
    train_pd = predict(booster, train.x, train.names)
    tonight = population(con, as_of)
    tonight_pd = predict(booster, tonight.x, tonight.names)[like_training(tonight)]
    metrics = discrimination(oot.y, oot_pd)
    stability = psi(train_pd, oot_pd)
    raw = booster.save_raw("ubj")
    version = f"m{as_of:%Y%m%d}-{hashlib.sha256(raw).hexdigest()[:10]}"

    # the champion in force on the date, never this very model (a rerun of the date)
    champion_version = registry.champion(as_of, excluding=version)
    champion_auc = None
    if champion_version is not None:
        champion, card = registry.load(champion_version)
        if card["features"]["names"] == oot.names:
            champion_auc = discrimination(oot.y, predict(champion, oot.x, oot.names)).auc
    promoted, reason = gate.decide(metrics.auc, stability, champion_auc)
    if champion_version is not None and champion_auc is None:
        promoted, reason = (
            False,
            f"champion {champion_version} uses other features; promote by hand after review",
        )

    card = {
        "version": version,
        "trained_as_of": as_of,
        "features": {"names": train.names, "monotone": train.monotone},
        "recipe": {**asdict(recipe), "best_iteration": info["best_iteration"]},
        # pd = sigmoid(a x margin + b), fitted on the validation slice (models/recipe.py)
        "platt": {"a": info["calibration_a"], "b": info["calibration_b"]},
        "label": {"window_days": LABEL_WINDOW_DAYS, "dpd_threshold": LABEL_DPD_THRESHOLD},
        "windows": {
            "train_start": train_dates[0],
            "train_end": train_dates[-1],
            "oot_start": oot_dates[0],
            "oot_end": oot_dates[-1],
        },
        "n_train": len(train.y),
        "n_oot": len(oot.y),
        "metrics": metrics.as_dict(),
        "psi_train_vs_oot": stability,
        "psi_train_vs_tonight": psi(train_pd, tonight_pd) if tonight_pd.size else None,
        # the training score distribution, for the nightly stability check
        "score_bins": dict(zip(("edges", "shares"), score_bins(train_pd), strict=True)),
        "calibration": deciles(oot.y, oot_pd),
        "roc": roc_points(oot.y, oot_pd),  # out of time: fpr and tpr, for the run report
        "importance_gain": {
            k: float(v) for k, v in sorted(booster.get_score(importance_type="gain").items())
        },
        "data_fingerprint": _fingerprint(train.x, train.y),
        "code_version": code_version(),
        "decision": {
            "promoted": promoted,
            "reason": reason,
            "champion": champion_version,
            "champion_auc": champion_auc,
        },
    }
    registry.save(version, booster, card)
    if promoted:
        registry.promote(version, reason, as_of, automatic=True)
    return ModelRun(
        dt=as_of,
        model_version=version,
        train_start=train_dates[0],
        train_end=train_dates[-1],
        oot_start=oot_dates[0],
        oot_end=oot_dates[-1],
        n_train=len(train.y),
        bad_rate=float(train.y.mean()),
        auc=metrics.auc,
        ks=metrics.ks,
        gini=metrics.gini,
        brier=metrics.brier,
        psi=stability,
        psi_tonight=card["psi_train_vs_tonight"],
        champion_version=champion_version,
        champion_auc=champion_auc,
        promoted=promoted,
        decision_reason=reason,
    )


def _no_model(as_of: date, reason: str) -> ModelRun:
    return ModelRun(dt=as_of, promoted=False, decision_reason=reason)

"""The training recipe: one way to fit the credit model, used nightly and by `model evaluate`.

XGBoost with the histogram method, monotone constraints where a feature's direction is
known, early stopping on a validation slice that is never the out-of-time window, and fixed
seeds with a fixed thread count, so the same data and seed give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xgboost as xgb

DEFAULT_PARAMS: dict[str, object] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
    "max_bin": 256,
}


@dataclass(frozen=True)
class Recipe:
    params: dict[str, object] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    rounds: int = 600
    early_stopping: int = 40
    validation_share: float = 0.2
    seed: int = 20251129
    threads: int = 2  # fixed: a different thread count may change float sums, and so the model


def fit(
    recipe: Recipe,
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    monotone: dict[str, int] | None = None,
    groups: np.ndarray | None = None,
) -> tuple[xgb.Booster, dict[str, float]]:
    """Fit on (x, y); early-stop on a seeded validation slice (by group when given, e.g. customer).

    ``monotone`` maps a feature name to +1 (risk never falls as it grows) or -1.
    """
    rng = np.random.default_rng(recipe.seed)
    if groups is None:
        valid = rng.random(len(y)) < recipe.validation_share
    else:
        uniq = np.unique(groups)
        valid = np.isin(groups, uniq[rng.random(len(uniq)) < recipe.validation_share])
    constraints = tuple(int((monotone or {}).get(f, 0)) for f in features)
    params = {
        **recipe.params,
        "seed": recipe.seed,
        "nthread": recipe.threads,
        "monotone_constraints": "(" + ",".join(map(str, constraints)) + ")",
    }
    train = xgb.DMatrix(x[~valid], label=y[~valid], feature_names=features)
    check = xgb.DMatrix(x[valid], label=y[valid], feature_names=features)
    booster = xgb.train(
        params,
        train,
        num_boost_round=recipe.rounds,
        evals=[(check, "validation")],
        early_stopping_rounds=recipe.early_stopping,
        verbose_eval=False,
    )
    # keep only the trees up to the best iteration: what is saved is what was validated
    booster = booster[: booster.best_iteration + 1]
    return booster, {
        "best_iteration": float(booster.num_boosted_rounds()),
        "n_train": float((~valid).sum()),
        "n_valid": float(valid.sum()),
    }


def predict(booster: xgb.Booster, x: np.ndarray, features: list[str]) -> np.ndarray:
    return booster.predict(xgb.DMatrix(x, feature_names=features))

"""The training recipe on a Dask cluster, through ``xgboost.dask``.

Same validation slice (seeded, by customer), parameters, monotone constraints, rounds,
early stopping on validation AUC, cut at the best iteration, and Platt scaling on the
validation slice, so the gate judges the model the same way. What differs, and why the
model is not bit-identical to a local fit: each worker sketches the histogram bins of its
own partitions and XGBoost merges the sketches, and row subsampling draws per worker. The
recipe's features are all supported by ``xgboost.dask`` (hist, monotone constraints, early
stopping); the test holds the out-of-time metrics within a stated tolerance of the local fit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xgboost as xgb

from creditflow.models.recipe import Recipe, calibrated, train_params, validation_rows

if TYPE_CHECKING:
    from distributed import Client


def fit_on_cluster(
    client: Client,
    recipe: Recipe,
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    monotone: dict[str, int] | None = None,
    groups: np.ndarray | None = None,
) -> tuple[xgb.Booster, dict[str, float]]:
    """``recipe.fit`` with the boosting rounds on the cluster's workers."""
    import dask.array as da
    import xgboost.dask as dxgb

    valid = validation_rows(recipe, len(y), groups)
    params = train_params(recipe, features, monotone)
    # each worker trains with its own threads; the recipe's count is for one process
    params.pop("nthread", None)
    workers = max(1, len(client.scheduler_info()["workers"]))

    def chunked(a: np.ndarray) -> da.Array:
        rows = max(1, math.ceil(len(a) / workers))
        return da.from_array(a, chunks=(rows, *a.shape[1:]))

    train = dxgb.DaskQuantileDMatrix(
        client,
        chunked(x[~valid]),
        chunked(y[~valid]),
        feature_names=features,
        max_bin=int(recipe.params.get("max_bin", 256)),  # type: ignore[call-overload]
    )
    check = dxgb.DaskQuantileDMatrix(
        client, chunked(x[valid]), chunked(y[valid]), feature_names=features, ref=train
    )
    out = dxgb.train(
        client,
        params,
        train,
        num_boost_round=recipe.rounds,
        evals=[(check, "validation")],
        early_stopping_rounds=recipe.early_stopping,
        verbose_eval=False,
    )
    booster: xgb.Booster = out["booster"]
    # cut and calibrated here as in the local recipe, on the same validation rows
    local_check = xgb.DMatrix(x[valid], label=y[valid], feature_names=features)
    return calibrated(booster, local_check, y, valid)

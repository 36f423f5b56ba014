"""Training and scoring costs: the recipe next to bare XGBoost on the same matrix.

    .venv/bin/python benchmarks/model_bench.py [--rows 2000000] [--features 60] [--score-rows 1000000]

Training: ``models.recipe.fit`` (validation split, early stopping with its patience,
monotone constraints) against bare ``xgboost.train`` growing the trees the recipe kept, with
the same parameters, on the same matrix. The recipe's extra cost is the validation metric
each round and the patience trees it grows and then drops. Scoring: pd, points and grades for --score-rows customers, plus exact reason
codes (``pred_contribs``) for the adverse tenth, next to a bare ``predict``.
The matrix is synthetic with a known signal; only costs are measured here.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import xgboost as xgb

from creditflow.models.recipe import Recipe, fit, predict
from creditflow.models.scoring import grades, points, reason_codes


def matrix(rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols)).astype(np.float32)
    x[rng.random((rows, cols)) < 0.05] = np.nan  # some missing values, as in real features
    logit = (
        -3.0
        + 0.8 * np.nan_to_num(x[:, 0])
        + 0.5 * np.nan_to_num(x[:, 1])
        - 0.4 * np.nan_to_num(x[:, 2])
    )
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=60)
    ap.add_argument("--score-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    names = [f"f{i}" for i in range(args.features)]
    x, y = matrix(args.rows, args.features, 1)
    recipe = Recipe(
        rounds=200, early_stopping=200
    )  # a fixed tree count so both sides grow the same forest
    monotone = {"f0": 1, "f1": 1, "f2": -1}

    t = time.perf_counter()
    booster, info = fit(recipe, x, y, names, monotone)
    recipe_s = time.perf_counter() - t
    trees = int(info["best_iteration"])

    params = {
        **recipe.params,
        "seed": recipe.seed,
        "nthread": recipe.threads,
        "monotone_constraints": "(" + ",".join(str(monotone.get(n, 0)) for n in names) + ")",
    }
    t = time.perf_counter()
    xgb.train(params, xgb.DMatrix(x, label=y, feature_names=names), num_boost_round=trees)
    bare_s = time.perf_counter() - t

    sx, _ = matrix(args.score_rows, args.features, 2)
    t = time.perf_counter()
    pd_ = predict(booster, sx, names)
    bare_predict_s = time.perf_counter() - t
    t = time.perf_counter()
    pd_ = predict(booster, sx, names)
    points(pd_)
    grades(pd_)
    adverse = np.argsort(-pd_)[: len(pd_) // 10]
    codes = reason_codes(booster, sx[adverse], names)
    score_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"training matrix {args.rows:,} x {args.features}; {trees} trees; cores {os.cpu_count()}")
    print("| step | seconds | ratio to bare |\n|---|---:|---:|")
    print(
        f"| recipe fit (80% train, 20% early-stopping validation) | {recipe_s:.1f} | {recipe_s / bare_s:.2f} |"
    )
    print(f"| bare xgboost.train, same params and trees, all rows | {bare_s:.1f} | 1.00 |")
    print(
        f"| score {args.score_rows:,}: pd, points, grade, reason codes for {len(adverse):,} adverse | {score_s:.1f} | {score_s / bare_predict_s:.1f} |"
    )
    print(f"| bare predict {args.score_rows:,} | {bare_predict_s:.1f} | 1.00 |")
    print(f"reason codes for the first adverse customer: {codes[0]}; peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()

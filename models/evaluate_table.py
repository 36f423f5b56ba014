"""`creditflow model evaluate`: the project's training recipe on any labelled table.

Risk teams use it to try the recipe on another portfolio. Every numeric column but the
target, id and time columns is a feature; text columns become category codes. With a time
column the test set is the latest fifth of the time range, strictly after the training
rows (out of time); without one it is a stratified fifth drawn with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.model_selection import train_test_split

from creditflow.models.metrics import Metrics, deciles, discrimination
from creditflow.models.recipe import Recipe, fit, predict


@dataclass(frozen=True)
class TableEvaluation:
    source: str
    split: str
    features: list[str]
    n_train: int
    n_test: int
    best_iteration: int
    metrics: Metrics
    calibration: list[dict[str, float]]

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "split": self.split,
            "features": self.features,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "best_iteration": self.best_iteration,
            "metrics": self.metrics.as_dict(),
            "calibration": self.calibration,
        }


def read_table(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    # scan the whole file for types: real extracts write 1e+05 in integer columns
    return pl.read_csv(path, infer_schema_length=None)


def evaluate_table(
    path: Path,
    target: str,
    *,
    time_column: str | None = None,
    id_column: str | None = None,
    recipe: Recipe | None = None,
    test_share: float = 0.2,
) -> TableEvaluation:
    recipe = recipe or Recipe()
    df = read_table(path)
    for col in (target, time_column, id_column):
        if col is not None and col not in df.columns:
            raise ValueError(f"{path}: no column {col!r} (columns: {', '.join(df.columns)})")
    y = df[target].cast(pl.Int64).to_numpy()
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(
            f"{path}: target {target!r} must be 0/1, found {sorted(set(np.unique(y)))[:5]}"
        )
    skip = {target, time_column, id_column}
    features = [c for c in df.columns if c not in skip]
    x = df.select(
        [
            pl.col(c).cast(pl.Categorical).to_physical().cast(pl.Float64)
            if df[c].dtype == pl.String
            else pl.col(c).cast(pl.Float64)
            for c in features
        ]
    ).to_numpy()
    if time_column is not None:
        t = df[time_column].to_numpy()
        cut = np.quantile(t, 1 - test_share, method="higher")
        test = t >= cut  # strictly after: every training row is earlier than every test row
        split = f"out of time: {time_column} >= {cut}"
    else:
        idx = np.arange(len(y))
        _, test_idx = train_test_split(
            idx, test_size=test_share, stratify=y, random_state=recipe.seed % 2**32
        )
        test = np.zeros(len(y), dtype=bool)
        test[test_idx] = True
        split = f"stratified {test_share:.0%} test, seed {recipe.seed}"
    booster, info = fit(recipe, x[~test], y[~test], features)
    pd_ = predict(booster, x[test], features)
    return TableEvaluation(
        source=str(path),
        split=split,
        features=features,
        n_train=int((~test).sum()),
        n_test=int(test.sum()),
        best_iteration=int(info["best_iteration"]),
        metrics=discrimination(y[test], pd_),
        calibration=deciles(y[test], pd_),
    )

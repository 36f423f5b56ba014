"""A champion made by hand, for tests that need scored limits before a book has matured labels:
trained on the warehouse's own features with a label leaning on arrears, so that some limits
come down and reason codes are computed."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import xgboost as xgb

from creditflow.models.dataset import population
from creditflow.models.registry import Registry


def hand_champion(
    warehouse: Path, models: Path, d: date, card: dict[str, Any] | None = None
) -> str:
    """Train ``m-hand`` on the features of ``d`` in ``warehouse``, save it in the registry at
    ``models`` with ``card`` added to its model card, and promote it (no business date)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = population(con, d)
    rng = np.random.default_rng(0)
    risk = np.nan_to_num(frame.x[:, frame.names.index("dpd_now")]) + rng.normal(size=len(frame.x))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 1, "nthread": 2, "eta": 0.5},
        xgb.DMatrix(frame.x, label=(risk > 0.8).astype(int), feature_names=frame.names),
        30,
    )
    registry = Registry(models)
    registry.save(
        "m-hand",
        booster,
        {"version": "m-hand", "features": {"names": frame.names, "monotone": {}}, **(card or {})},
    )
    registry.promote("m-hand", "promoted by hand")
    return "m-hand"

"""The features step: tonight's model input for every customer, built once a night (the drift
check and the scoring both read it)."""

from __future__ import annotations

from datetime import date

import polars as pl

from creditflow.execution import executor_for
from creditflow.models.dataset import Frame, encode
from creditflow.settings import Settings
from creditflow.transforms.features import FEATURES
from creditflow.warehouse import open_warehouse


def build_population(settings: Settings, d: date) -> Frame:
    """Every customer known on ``d`` as the model's input matrix, ordered by customer_id."""
    with (
        open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con,
        executor_for(settings) as executor,
    ):
        rows = executor.run(con, FEATURES, d)
    table = pl.from_arrow(rows)
    assert isinstance(table, pl.DataFrame)
    return encode(table.sort("customer_id", maintain_order=True))

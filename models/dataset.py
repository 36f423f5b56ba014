"""Training tables: point-in-time features joined to matured labels over observation dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from creditflow.contract import GENDERS, OCCUPATIONS
from creditflow.transforms.features import (
    LABEL_DPD_THRESHOLD,
    LABEL_WINDOW_DAYS,
    MONOTONE,
    features,
    labels,
)

# Not features: identifiers, the date, and status (eligibility is the limit policy's business).
NOT_FEATURES = {"observation_date", "customer_id", "status", "label"}
# Stable codes for text attributes, from the contract's fixed value lists (not from the data).
CODES = {"gender": list(GENDERS), "occupation": list(OCCUPATIONS)}


@dataclass(frozen=True)
class Frame:
    """Features as a float matrix, with names, ids, dates and (when labelled) targets."""

    x: np.ndarray
    names: list[str]
    customer_id: np.ndarray
    observation_date: np.ndarray
    y: np.ndarray | None

    @property
    def monotone(self) -> dict[str, int]:
        return {k: v for k, v in MONOTONE.items() if k in self.names}


def encode(df: pl.DataFrame) -> Frame:
    exprs = []
    names = []
    for col, dtype in df.schema.items():
        if col in NOT_FEATURES:
            continue
        if col in CODES:
            exprs.append(
                pl.col(col)
                .replace_strict(CODES[col], list(range(len(CODES[col]))), default=None)
                .cast(pl.Float64)
            )
        elif dtype == pl.Boolean or dtype.is_numeric() or dtype.is_decimal():
            exprs.append(pl.col(col).cast(pl.Float64))
        else:
            continue
        names.append(col)
    x = df.select(exprs).to_numpy()
    y = df["label"].to_numpy().astype(int) if "label" in df.columns else None
    return Frame(x, names, df["customer_id"].to_numpy(), df["observation_date"].to_numpy(), y)


def population(con: duckdb.DuckDBPyConnection, observation_date: date) -> Frame:
    """Every customer known on the date, as the model's input matrix."""
    frame = pl.from_arrow(features(con, observation_date).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return encode(frame)


def like_training(frame: Frame, dpd_threshold: int = LABEL_DPD_THRESHOLD) -> np.ndarray:
    """Rows of customers the model was trained on: a balance and below the label threshold.

    Score stability compares like with like: tonight's customers of this kind against the
    training observations (most customers borrow nothing and would swamp the comparison).
    """
    outstanding = np.nan_to_num(frame.x[:, frame.names.index("outstanding_principal")])
    dpd = np.nan_to_num(frame.x[:, frame.names.index("dpd_now")])
    return (outstanding > 0) & (dpd < dpd_threshold)


def observation_dates(
    first: date, last_matured: date, every_days: int = 7, history_days: int = 60
) -> list[date]:
    """Weekly observation dates from once there is history until the last matured one."""
    out, d = [], first + timedelta(days=history_days)
    while d <= last_matured:
        out.append(d)
        d += timedelta(days=every_days)
    return out


def labelled(con: duckdb.DuckDBPyConnection, dates: list[date]) -> pl.DataFrame:
    """Features joined to labels for the dates; only matured, labelled borrowers."""
    frames = []
    for t in dates:
        f = pl.from_arrow(features(con, t).to_arrow_table())
        y = pl.from_arrow(labels(con, t).to_arrow_table())
        assert isinstance(f, pl.DataFrame) and isinstance(y, pl.DataFrame)
        frames.append(
            f.join(
                y.filter(pl.col("label").is_not_null()).drop("observation_date"), on="customer_id"
            )
        )
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


def last_matured(
    con: duckdb.DuckDBPyConnection, window_days: int = LABEL_WINDOW_DAYS
) -> date | None:
    row = con.execute("select max(dt) from ledger_runs").fetchall()
    return None if not row or row[0][0] is None else row[0][0] - timedelta(days=window_days)

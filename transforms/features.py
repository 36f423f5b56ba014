"""Point-in-time features and matured labels, as the model sees a customer on a date."""

from __future__ import annotations

from datetime import date

import duckdb

from creditflow.transforms.ledger import sql

LABEL_WINDOW_DAYS = 90
LABEL_DPD_THRESHOLD = 30

# Features whose direction is known: +1, risk never falls as the value grows; -1, never rises.
MONOTONE: dict[str, int] = {
    "dpd_now": 1,
    "worst_dpd_90": 1,
    "worst_dpd_180": 1,
    "was_30plus_180": 1,
    "overdue_amount": 1,
    "failed_repayments_90": 1,
    "reversals_90": 1,
    "clean_days_share_90": -1,
    "kyc_level": -1,
    "declared_monthly_income": -1,
    "tenure_days": -1,
}


def features(con: duckdb.DuckDBPyConnection, observation_date: date) -> duckdb.DuckDBPyRelation:
    """Every customer known on the date, with features from what was delivered by then."""
    return con.sql(sql("features"), params={"t": observation_date})


def labels(
    con: duckdb.DuckDBPyConnection,
    observation_date: date,
    *,
    window_days: int = LABEL_WINDOW_DAYS,
    dpd_threshold: int = LABEL_DPD_THRESHOLD,
) -> duckdb.DuckDBPyRelation:
    """Borrowers below the threshold on the date; label null until the window has closed."""
    return con.sql(
        sql("labels"),
        params={"t": observation_date, "window": window_days, "threshold": dpd_threshold},
    )

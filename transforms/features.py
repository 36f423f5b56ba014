"""Point-in-time features and matured labels, as the model sees a customer on a date."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from creditflow.transforms.inputs import DatedTable, Slice, Stage
from creditflow.transforms.ledger import ensure_ledger_tables
from creditflow.transforms.queries import sql

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


def feature_rows(con: duckdb.DuckDBPyConnection, observation_date: date) -> pa.Table:
    """The kernel of the features stage: ``features`` materialised."""
    return features(con, observation_date).to_arrow_table()


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


# What features.sql reads for date $d, by customer: every customer version and loan up to the
# date (the features count all of them), and by date the windows it aggregates (behaviour's
# business_date is its delivery date: a rule of the contract that ingest enforces).
CUSTOMERS_TO_DATE = Slice(
    "customers", "select *, customer_id as shard_key from customers where dt <= $d"
)
FEATURES = Stage(
    name="features",
    slices=(
        CUSTOMERS_TO_DATE,
        Slice("loans", "select *, customer_id as shard_key from loans where dt <= $d"),
    ),
    dated=(
        DatedTable(
            "behaviour", 90, "select *, customer_id as shard_key from behaviour where dt = $dt"
        ),
        DatedTable(
            "transactions",
            90,
            """select *, customer_id as shard_key from transactions
               where dt = $dt and txn_type in ('REPAYMENT', 'REVERSAL')""",
        ),
        DatedTable(
            "loan_daily", 180, "select *, customer_id as shard_key from loan_daily where dt = $dt"
        ),
    ),
    setup=ensure_ledger_tables,
    kernel=feature_rows,
)

"""Scores, risk grades and reason codes.

Points scale: ``score = BASE_POINTS + PDO / ln 2 * ln(odds / BASE_ODDS)`` with odds =
good:bad = (1 - pd) / pd, so a score of 600 means odds of 50:1 and every 20 points doubles the
odds. Risk grades are fixed pd bands. Reason codes are the features that pushed a customer's
risk up the most, from XGBoost's exact per-feature contributions (``pred_contribs``), which
sum with the bias to the model's margin. They cost about a millisecond per row, so callers
compute them where a decision needs explaining (every adverse limit action), not for all.
"""

from __future__ import annotations

import math
from datetime import date

import duckdb
import numpy as np
import polars as pl
import xgboost as xgb

from creditflow.models.dataset import Frame

BASE_POINTS = 600.0
BASE_ODDS = 50.0
PDO = 20.0
PD_FLOOR = 1e-6  # keeps the log finite at the extremes

# upper pd bound of each grade; G takes the rest
GRADES: tuple[tuple[str, float], ...] = (
    ("A", 0.01),
    ("B", 0.02),
    ("C", 0.04),
    ("D", 0.08),
    ("E", 0.15),
    ("F", 0.30),
)
MAX_REASONS = 4

PLAIN_NAMES = {
    "dpd_now": "currently past due",
    "worst_dpd_90": "past due in the last 90 days",
    "worst_dpd_180": "past due in the last 180 days",
    "was_30plus_180": "30+ days past due in the last 180 days",
    "clean_days_share_90": "few days without arrears in the last 90 days",
    "overdue_amount": "overdue amount",
    "outstanding_principal": "outstanding balance",
    "principal_outstanding_share": "little of current loans repaid",
    "failed_repayments_90": "failed auto-debits in the last 90 days",
    "reversals_90": "bounced repayments in the last 90 days",
    "loans_90": "several new loans in the last 90 days",
    "principal_borrowed_90": "amount borrowed in the last 90 days",
    "wallet_avg_7": "low wallet balance this week",
    "wallet_avg_30": "low wallet balance this month",
    "wallet_min_30": "wallet balance ran low this month",
    "wallet_trend_7_90": "wallet balance falling",
    "night_share_avg_7": "night-time app activity this week",
    "night_share_avg_30": "night-time app activity this month",
    "transfers_out_in_ratio_30": "more money transferred out than in",
    "device_changes_30": "device changes",
    "contacts_added_30": "many new contacts",
    "declared_monthly_income": "low or undeclared income",
    "kyc_level": "identity verification level",
    "tenure_days": "short time as a customer",
    "age": "age",
    "gender": "gender",
    "city_tier": "city tier",
    "occupation": "occupation",
    "active_days_7": "days active in the app this week",
    "active_days_30": "days active in the app this month",
    "active_days_90": "days active in the app in the last 90 days",
    "app_minutes_avg_30": "time spent in the app this month",
    "app_sessions_avg_30": "app sessions this month",
    "payments_count_30": "number of payments this month",
    "payments_amount_30": "amount paid to merchants this month",
    "payments_amount_90": "amount paid to merchants in the last 90 days",
    "transfers_in_30": "money received this month",
    "transfers_out_30": "money transferred out this month",
    "transfers_out_in_ratio_90": "more money transferred out than in over 90 days",
    "red_packets_sent_30": "red packets sent this month",
    "red_packets_received_30": "red packets received this month",
    "device_changes_90": "device changes in the last 90 days",
    "night_share_avg_90": "night-time app activity in the last 90 days",
    "wallet_avg_90": "wallet balance over 90 days",
    "wallet_sd_30": "wallet balance swings this month",
    "days_since_first_active_90": "short recent app history",
    "days_since_last_active": "days since last active in the app",
    "active_loans": "number of loans outstanding",
    "loans_ever": "number of loans taken",
    "repayments_90": "repayments in the last 90 days",
    "days_since_first_loan": "short borrowing history",
    "days_since_last_loan": "time since the last loan",
}


def points(pd_: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(pd_, dtype=float), PD_FLOOR, 1 - PD_FLOOR)
    return np.round(BASE_POINTS + PDO / math.log(2) * np.log(((1 - p) / p) / BASE_ODDS)).astype(int)


def grades(pd_: np.ndarray) -> np.ndarray:
    bounds = np.array([b for _, b in GRADES])
    names = np.array([g for g, _ in GRADES] + ["G"])
    return names[np.searchsorted(bounds, np.asarray(pd_, dtype=float), side="right")]


def plain(feature: str) -> str:
    return PLAIN_NAMES.get(feature, feature.replace("_", " "))


def contributions(booster: xgb.Booster, x: np.ndarray, names: list[str]) -> np.ndarray:
    """Exact per-feature contributions to the margin (log-odds); the last column is the bias."""
    return booster.predict(xgb.DMatrix(x, feature_names=names), pred_contribs=True)


def reference_contributions(
    booster: xgb.Booster,
    x: np.ndarray,
    names: list[str],
    pd_: np.ndarray,
    share: float = 0.1,
    max_rows: int = 2000,
) -> np.ndarray:
    """Mean contributions of the safest ``share`` of customers (at most ``max_rows`` of them).

    Reasons measured against these say what sets a customer apart from the best ones. Against
    the bias alone (the base rate), a customer safer than average has only negative
    contributions and would get no reason at all, even when the model lowers their limit.
    """
    valid = np.flatnonzero(~np.isnan(pd_))
    if valid.size == 0:
        return np.zeros(len(names))
    best = valid[np.argsort(pd_[valid], kind="stable")][
        : max(1, min(max_rows, int(len(valid) * share)))
    ]
    return contributions(booster, x[best], names)[:, :-1].mean(axis=0)


def reason_codes(
    booster: xgb.Booster,
    x: np.ndarray,
    names: list[str],
    limit: int = MAX_REASONS,
    reference: np.ndarray | None = None,
) -> list[list[str]]:
    """Up to ``limit`` plain-named features that pushed each row's risk up, strongest first:
    contributions above the bias, or above ``reference`` (per feature) when given."""
    contrib = contributions(booster, x, names)[:, :-1]
    if reference is not None:
        contrib = contrib - reference
    out = []
    for row in contrib:
        order = np.argsort(-row, kind="stable")
        out.append([plain(names[j]) for j in order[:limit] if row[j] > 0])
    return out


def score_population(
    con: duckdb.DuckDBPyConnection,
    observation_date: date,
    booster: xgb.Booster,
    names: list[str],
    frame: Frame | None = None,
) -> pl.DataFrame:
    """Every customer known on the date: pd, points and grade from the model (no reason codes),
    in the order of the feature matrix; ``frame`` when the caller already built the features."""
    from creditflow.models.dataset import population
    from creditflow.models.recipe import predict

    frame = frame if frame is not None else population(con, observation_date)
    if frame.names != names:
        raise ValueError(
            f"the model expects features {names}, the warehouse gives {frame.names}: "
            "retrain, or roll back to a model that matches"
        )
    pd_ = predict(booster, frame.x, names).astype(float)
    return pl.DataFrame(
        {
            "customer_id": frame.customer_id.astype(str),
            "pd": pd_,
            "score": points(pd_).astype(np.int32),
            "risk_grade": grades(pd_),
        }
    )

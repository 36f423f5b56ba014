"""Scores, grades and reason codes: documented scaling, monotone grades, additive contributions."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from creditflow.models.scoring import GRADES, contributions, grades, points, reason_codes


def test_points_scaling_is_the_documented_one() -> None:
    """600 points at odds 50:1; 20 points double the odds."""
    pd_at_50_to_1 = 1 / 51
    pd_at_100_to_1 = 1 / 101
    assert points(np.array([pd_at_50_to_1]))[0] == 600
    assert points(np.array([pd_at_100_to_1]))[0] == 620


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_higher_pd_never_scores_higher_or_grades_better(a: float, b: float) -> None:
    """Score falls and grade worsens (or stays) as pd rises; extremes stay finite."""
    lo, hi = sorted((a, b))
    s = points(np.array([lo, hi]))
    g = grades(np.array([lo, hi]))
    assert s[0] >= s[1]
    assert g[0] <= g[1]  # "A" < "B" < ... < "G"


def test_grade_bands() -> None:
    """Each band's upper bound belongs to the next grade."""
    assert list(grades(np.array([0.005, 0.01, 0.03, 0.2, 0.5]))) == ["A", "B", "C", "F", "G"]
    assert len(GRADES) == 6


@pytest.fixture(scope="module")
def model() -> tuple[xgb.Booster, np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=2000) > 1).astype(int)
    names = ["dpd_now", "wallet_avg_30", "age", "kyc_level", "mystery_feature"]
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 1, "nthread": 2},
        xgb.DMatrix(x, label=y, feature_names=names),
        50,
    )
    return booster, x, names


def test_contributions_plus_bias_equal_the_margin(
    model: tuple[xgb.Booster, np.ndarray, list[str]],
) -> None:
    """Exact contributions are additive: their sum with the bias is the model's log-odds."""
    booster, x, names = model
    contrib = contributions(booster, x[:300], names)
    margin = booster.predict(xgb.DMatrix(x[:300], feature_names=names), output_margin=True)
    np.testing.assert_allclose(contrib.sum(axis=1), margin, rtol=0, atol=1e-4)


def test_reason_codes_name_the_features_that_pushed_risk_up(
    model: tuple[xgb.Booster, np.ndarray, list[str]],
) -> None:
    """Up to four plain names, strongest first, only features with a positive contribution."""
    booster, x, names = model
    risky = x[np.argmax(x[:, 0])][None, :]
    codes = reason_codes(booster, risky, names)[0]
    assert 1 <= len(codes) <= 4
    assert codes[0] == "currently past due"
    contrib = contributions(booster, risky, names)[0, :-1]
    assert len(codes) == min(4, int((contrib > 0).sum()))
    assert all(" " in c or c == "age" for c in codes)  # plain names, unknown ones de-underscored

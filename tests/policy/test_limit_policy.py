"""The limit policy as a pure transform: the contract's invariants, each rule, and their order."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditflow.contract import OCCUPATIONS
from creditflow.models.scoring import grades
from creditflow.policy.config import PolicyError, load_policy
from creditflow.policy.ladder import STEPS, decide, grade_of, step_column

POLICY = load_policy()
RUN = date(2026, 3, 1)
PRODUCT_CAP = 200_000

GOOD: dict[str, Any] = {
    "customer_id": "C1",
    "age": 35,
    "occupation": "SALARIED",
    "status": "ACTIVE",
    "kyc_level": 3,
    "city_tier": 1,
    "income_cents": 2_000_000,  # 20,000.00 a month
    "dpd": 0,
    "outstanding_cents": 0,
    "pd": 0.005,
    "previous_limit": 10_000,
    "last_increase_on": RUN - timedelta(days=90),
}


def one(**changes: Any) -> dict[str, Any]:
    out = decide(pl.DataFrame([GOOD | changes], schema_overrides=_SCHEMA), RUN, POLICY)
    return out.row(0, named=True)


_SCHEMA = {"income_cents": pl.Int64, "pd": pl.Float64, "previous_limit": pl.Int64, "last_increase_on": pl.Date}  # fmt: skip

customers = st.fixed_dictionaries(
    {
        "customer_id": st.just("C"),
        "age": st.integers(10, 80),
        "occupation": st.sampled_from(OCCUPATIONS),
        "status": st.sampled_from(["ACTIVE", "ACTIVE", "ACTIVE", "BLOCKED", "CLOSED"]),
        "kyc_level": st.integers(1, 3),
        "city_tier": st.integers(1, 5),
        "income_cents": st.none() | st.integers(0, 10**8),
        "dpd": st.sampled_from([0, 0, 0, 1, 5, 29, 30, 31, 95, 200]),
        "outstanding_cents": st.integers(0, 3 * 10**7),
        "pd": st.none() | st.floats(0.0, 1.0),
        "previous_limit": st.none() | st.integers(0, 2000).map(lambda n: n * 100),
        "last_increase_on": st.none() | st.integers(0, 120).map(lambda n: RUN - timedelta(days=n)),
    }
)


def decide_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return decide(pl.DataFrame(rows, schema_overrides=_SCHEMA), RUN, POLICY).to_dicts()


def eligible(row: dict[str, Any]) -> bool:
    return (
        row["status"] == "ACTIVE"
        and 19 <= row["age"] <= 65  # age reached this year: 18 may still be 17
        and row["occupation"] != "STUDENT"
        and row["kyc_level"] >= 2
    )


# --- the contract's "Limit rules that always hold" -------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.lists(customers, min_size=1, max_size=20))
def test_caps_always_hold(rows: list[dict[str, Any]]) -> None:
    """0 <= limit <= 200,000, a multiple of 100, and at most 4x declared income when known."""
    for row in decide_rows(rows):
        assert 0 <= row["new_limit"] <= PRODUCT_CAP
        assert row["new_limit"] % 100 == 0
        if row["income_cents"] is not None:
            assert row["new_limit"] * 100 <= 4 * row["income_cents"]


@settings(max_examples=400, deadline=None)
@given(st.lists(customers, min_size=1, max_size=20))
def test_ineligible_customers_get_nothing_and_the_rule_is_named(rows: list[dict[str, Any]]) -> None:
    for row in decide_rows(rows):
        if not eligible(row):
            assert row["new_limit"] == 0
            assert row["action"] in ("FREEZE", "CLOSE")
            assert row["policy_rule"].startswith("eligibility.")
        else:
            assert not row["policy_rule"].startswith("eligibility.")


@settings(max_examples=400, deadline=None)
@given(st.lists(customers, min_size=1, max_size=20))
def test_arrears_block_increases_and_30_days_freezes(rows: list[dict[str, Any]]) -> None:
    for row in decide_rows(rows):
        if row["dpd"] > 0:
            assert row["action"] != "INCREASE"
            assert row["new_limit"] <= (row["previous_limit"] or 0)
        if row["dpd"] >= 30:
            assert row["action"] in ("FREEZE", "CLOSE")
            assert row["new_limit"] == 0


@settings(max_examples=300, deadline=None)
@given(customers, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_a_higher_pd_never_gives_a_higher_limit(
    row: dict[str, Any], pd_a: float, pd_b: float
) -> None:
    low, high = sorted((pd_a, pd_b))
    out = decide_rows([row | {"pd": low}, row | {"pd": high}])
    assert out[1]["new_limit"] <= out[0]["new_limit"]


@settings(max_examples=400, deadline=None)
@given(st.lists(customers, min_size=1, max_size=20))
def test_actions_agree_with_the_limits(rows: list[dict[str, Any]]) -> None:
    """NEW on a first evaluation, else the action is the direction of the change."""
    for row in decide_rows(rows):
        prev, new, action = row["previous_limit"], row["new_limit"], row["action"]
        if action in ("FREEZE", "CLOSE"):
            assert new == 0
        elif prev is None:
            assert action == "NEW"
        else:
            assert action == (
                "INCREASE" if new > prev else "DECREASE" if new < prev else "UNCHANGED"
            )


@settings(max_examples=400, deadline=None)
@given(st.lists(customers, min_size=1, max_size=20))
def test_change_limits_hold(rows: list[dict[str, Any]]) -> None:
    """Increases within the step and interval; decreases not below the balance unless a cap binds."""
    c = POLICY.change
    for row in decide_rows(rows):
        prev, new = row["previous_limit"], row["new_limit"]
        if prev is None or row["action"] in ("FREEZE", "CLOSE"):
            continue
        if new > prev:
            step = min(c.max_increase_amount, max(c.max_increase_share * prev, c.min_increase_step))
            assert new - prev <= step
            last = row["last_increase_on"]
            assert last is None or (RUN - last).days >= c.min_days_between_increases
        if new < prev:
            balance = -(-row["outstanding_cents"] // 10_000) * 100  # rounded up to 100 yuan
            assert new >= min(prev, balance) or new == row["hard_cap"]


def test_risk_grades_match_the_scoring_module() -> None:
    pd_ = np.concatenate([np.linspace(0, 1, 2001), [0.01, 0.02, 0.04, 0.08, 0.15, 0.30]])
    ours = pl.select(grade_of(pl.Series(pd_))).to_series().to_list()
    assert ours == list(grades(pd_))


# --- each rule, and the order in which they apply --------------------------------------------


@pytest.mark.parametrize(
    ("changes", "limit", "action", "rule"),
    [
        # eligibility, in its documented order: the first failing check is named
        ({"status": "CLOSED", "age": 70}, 0, "CLOSE", "eligibility.status_closed"),
        ({"status": "BLOCKED", "age": 70}, 0, "CLOSE", "eligibility.over_max_age"),
        ({"status": "BLOCKED", "kyc_level": 1}, 0, "FREEZE", "eligibility.status_blocked"),
        ({"status": None}, 0, "FREEZE", "eligibility.status_blocked"),
        ({"age": 17, "occupation": "STUDENT"}, 0, "FREEZE", "eligibility.under_min_age"),
        ({"age": 66}, 0, "CLOSE", "eligibility.over_max_age"),
        ({"occupation": "STUDENT", "kyc_level": 1}, 0, "FREEZE", "eligibility.occupation"),
        ({"kyc_level": 1, "dpd": 40}, 0, "FREEZE", "eligibility.kyc"),
        # only the birth year is known: turning 18 this year may still mean 17, turning 66
        # may still mean 65; both ends err on the side of the rule
        ({"age": 18}, 0, "FREEZE", "eligibility.under_min_age"),
        ({"age": 19}, 15_000, "INCREASE", "change.max_increase"),
        ({"age": 66}, 0, "CLOSE", "eligibility.over_max_age"),
        ({"age": 65}, 15_000, "INCREASE", "change.max_increase"),
        # delinquency: freeze at 30 before the model's own freeze
        ({"dpd": 30, "pd": 0.9}, 0, "FREEZE", "delinquency.freeze"),
        ({"dpd": 29}, 10_000, "UNCHANGED", "delinquency.no_increase"),
        ({"pd": 0.5}, 0, "FREEZE", "model.freeze"),
        # the target by grade: A is 3x income up to 50,000 (here 60,000 -> 50,000), then the step
        ({"previous_limit": None}, 50_000, "NEW", "band"),
        ({"previous_limit": None, "income_cents": None}, 25_000, "NEW", "band"),
        # expected loss: pd 0.14 (E) -> 400 / (0.14 x 0.85) = 3361 -> 3300
        ({"pd": 0.14, "previous_limit": None}, 3_300, "NEW", "expected_loss"),
        # income cap binds under the band: grade A wants 3x, the cap is 4x; a low income
        ({"income_cents": 250_000, "previous_limit": None}, 7_500, "NEW", "band"),
        # the floor holds a decrease at the balance (300,000), but never above the product cap
        ({"income_cents": None, "previous_limit": 250_000, "outstanding_cents": 30_000_000}, 200_000, "DECREASE", "change.outstanding_floor"),
        # interval: increased 10 days ago
        ({"last_increase_on": RUN - timedelta(days=10)}, 10_000, "UNCHANGED", "change.interval"),
        # step: 10,000 + min(10,000, max(5,000, 1,000)) = 15,000
        ({}, 15_000, "INCREASE", "change.max_increase"),
        ({"previous_limit": 100}, 1_100, "INCREASE", "change.max_increase"),
        # decreases stop at the outstanding balance (rounded up to 100)
        ({"pd": 0.2, "previous_limit": 10_000, "outstanding_cents": 612_345}, 6_200, "DECREASE", "change.outstanding_floor"),
        ({"pd": 0.2, "previous_limit": 10_000, "outstanding_cents": 0}, 1_700, "DECREASE", "expected_loss"),
        # ... but the income cap (4x 1,000) holds even below the balance
        ({"income_cents": 100_000, "previous_limit": 10_000, "outstanding_cents": 900_000}, 4_000, "DECREASE", "change.outstanding_floor"),
        # the starter rule before any model: kyc 3 -> 5,000 x tier factor, at most 0.5x income
        ({"pd": None, "previous_limit": None}, 5_000, "NEW", "starter"),
        ({"pd": None, "previous_limit": None, "kyc_level": 2, "city_tier": 4}, 1_200, "NEW", "starter"),
        ({"pd": None, "previous_limit": None, "income_cents": 300_000}, 1_500, "NEW", "starter"),
        ({"pd": None, "previous_limit": None, "income_cents": None, "city_tier": 5}, 1_200, "NEW", "starter"),
        # a customer in arrears on a first evaluation gets nothing new
        ({"previous_limit": None, "dpd": 3}, 0, "NEW", "delinquency.no_increase"),
    ],
)  # fmt: skip
def test_rule_table(changes: dict[str, Any], limit: int, action: str, rule: str) -> None:
    row = one(**changes)
    assert (row["new_limit"], row["action"], row["policy_rule"]) == (limit, action, rule)


def test_the_trace_records_the_limit_after_every_rule() -> None:
    row = one(pd=0.2, previous_limit=10_000, outstanding_cents=612_345)
    trace = [row["after_target"]] + [row[step_column(r)] for r in STEPS]
    # F: min(3,000, 0.5 x 20,000) = 3,000; EL 300 / (0.2 x 0.85) = 1,764 -> 1,700; floor 6,200
    assert trace == [3_000, 1_700, 1_700, 1_700, 1_700, 1_700, 1_700, 6_200]


def test_new_and_increase_restart_the_interval() -> None:
    assert one()["increased_on"] == RUN
    assert one(previous_limit=None)["increased_on"] == RUN
    unchanged = one(last_increase_on=RUN - timedelta(days=10))
    assert unchanged["increased_on"] == RUN - timedelta(days=10)


# --- the policy file -------------------------------------------------------------------------


def test_the_packaged_policy_loads_with_a_content_hash() -> None:
    assert POLICY.full_version.startswith(POLICY.version + "+")
    assert len(POLICY.content_sha256) == 64


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    from creditflow.policy.config import DEFAULT_POLICY_FILE

    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_an_edit_changes_the_version_hash_and_the_limits(tmp_path: Path) -> None:
    path = _edited(tmp_path, "max_increase_amount = 10000", "max_increase_amount = 2000")
    edited = load_policy(path)
    assert edited.full_version != POLICY.full_version
    out = decide(pl.DataFrame([GOOD], schema_overrides=_SCHEMA), RUN, edited).row(0, named=True)
    assert out["new_limit"] == 12_000


def test_the_product_cap_binds_above_every_band(tmp_path: Path) -> None:
    path = _edited(tmp_path, "A = { amount = 50000", "A = { amount = 500000")
    policy = load_policy(path)
    row = GOOD | {"pd": 0.001, "income_cents": 10**8, "previous_limit": 195_000}
    out = decide(pl.DataFrame([row], schema_overrides=_SCHEMA), RUN, policy).row(0, named=True)
    assert (out["new_limit"], out["action"], out["policy_rule"]) == (
        200_000,
        "INCREASE",
        "cap.product",
    )


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("C = { amount = 20000", "C = { amount = 40000", "bands.C.amount is above bands.B.amount"),
        ("product_cap = 200000", "product_cap = 300000", "product_cap"),
        ("income_multiple = 4.0", "income_multiple = 5.0", "income_multiple"),
        ('excluded_occupations = ["STUDENT"]', 'excluded_occupations = ["PIRATE"]', "PIRATE"),
        ("[change]", "[change]\nsurprise = 1", "surprise"),
        ("G = { amount = 0", "Z = { amount = 0", "missing ['G']"),
        # the contract's rules are a floor a policy may not lower
        ("freeze_dpd = 30", "freeze_dpd = 60", "freeze_dpd"),
        ("no_increase_dpd = 1 ", "no_increase_dpd = 10 ", "no_increase_dpd"),
        ("min_kyc_level = 2", "min_kyc_level = 1", "kyc_level 1 is never eligible"),
        ('excluded_occupations = ["STUDENT"]', "excluded_occupations = []", "STUDENT"),
        ("max_age = 65", "max_age = 80", "18..65"),
        ("rounding = 100", "rounding = 50", "rounding"),
        ("1 = 1.0, 2 = 1.0, 3 = 0.8", "1 = -1.0, 2 = 1.0, 3 = 0.8", "city_tier_factor"),
        # pricing and notices (tests/policy/test_pricing.py has their behaviour)
        ("max_annual_rate = 0.24", "max_annual_rate = 0.25", "above 0.24"),
        ("D = 0.146, E", "D = 0.1, E", "grade_rates.D (0.1) is below grade_rates.C"),
        ("G = 0.24 }", "G = 0.3 }", "grade_rates.G 0.3 is outside"),
        ("starter_rate = 0.18", "starter_rate = 0.0", "starter_rate"),
        ("starter_rate = 0.18", "starter_rate = 0.1812345", "more than 6 decimals"),
        ('grade_table = "floor"', 'grade_table = "cheapest"', "grade_table"),
        ("lgd = 0.85\npd_horizon", "lgd = 1.5\npd_horizon", "lgd"),
        ('quiet_start = "21:00"', 'quiet_start = "25:00"', "quiet_start"),
        ('DUE_SOON = "10:00"', 'DUE_LATER = "10:00"', "send_at"),
        ("due_soon_days = [3, 1]", "due_soon_days = [3, 0]", "due_soon_days"),
    ],
)
def test_a_bad_policy_fails_on_load_naming_the_file_and_field(
    tmp_path: Path, old: str, new: str, names: str
) -> None:
    path = _edited(tmp_path, old, new)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    assert names in str(err.value)

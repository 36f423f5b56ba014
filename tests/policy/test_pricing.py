"""Risk-based pricing: every limit above 0 gets a rate within the cap, a higher pd never a
lower rate, each pricing rule does what the policy file says, and a bad pricing table is
refused when it is loaded."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditflow.policy.config import LimitPolicy, load_policy
from creditflow.policy.ladder import decide
from creditflow.policy.notice_types import clock_minutes, in_quiet_hours, send_after
from creditflow.policy.pricing import MICRO, PRICING_RULES, price
from tests.policy.test_limit_policy import _SCHEMA, GOOD, RUN, customers

POLICY = load_policy()


def priced(rows: list[dict[str, Any]], policy: LimitPolicy = POLICY) -> list[dict[str, Any]]:
    decided = decide(pl.DataFrame(rows, schema_overrides=_SCHEMA), RUN, policy)
    return price(decided, policy).to_dicts()


def with_pricing(**changes: Any) -> LimitPolicy:
    """The packaged policy with its pricing section changed (validated like a file)."""
    data = POLICY.model_dump()
    data["pricing"] = data["pricing"] | changes
    return LimitPolicy.model_validate(data)


@settings(max_examples=400, deadline=None)
@given(st.lists(customers, min_size=1, max_size=20))
def test_every_limit_above_0_has_a_rate_within_the_cap_and_a_limit_of_0_none(
    rows: list[dict[str, Any]],
) -> None:
    cap = POLICY.pricing.max_annual_rate
    for row in priced(rows):
        if row["new_limit"] > 0:
            assert 0 < row["offered_annual_rate"] <= cap
            assert row["pricing_rule"] in PRICING_RULES
            # on the DECIMAL(8,6) grid, so storing it is exact
            assert row["offered_annual_rate"] * MICRO == pytest.approx(
                round(row["offered_annual_rate"] * MICRO), abs=1e-6
            )
            assert (row["pricing_rule"] == "pricing.starter") == (row["pd"] is None)
        else:
            assert row["offered_annual_rate"] is None and row["pricing_rule"] is None


@settings(max_examples=400, deadline=None)
@given(
    customers.filter(lambda r: r["pd"] is not None),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.sampled_from(["floor", "override"]),
    st.booleans(),
)
def test_a_higher_pd_never_gets_a_lower_rate(
    row: dict[str, Any], pd_a: float, pd_b: float, table: str, with_cost: bool
) -> None:
    """All else equal, whatever the grade table's role and with or without the build-up."""
    policy = with_pricing(grade_table=table, **({} if with_cost else {"cost": None}))
    low, high = sorted((pd_a, pd_b))
    safe, risky = priced([row | {"pd": low}, row | {"pd": high}], policy)
    if safe["offered_annual_rate"] is not None and risky["offered_annual_rate"] is not None:
        assert risky["offered_annual_rate"] >= safe["offered_annual_rate"]


def one(policy: LimitPolicy = POLICY, **changes: Any) -> dict[str, Any]:
    return priced([GOOD | changes], policy)[0]


def test_the_cost_build_up_sets_the_rate_above_the_grade_floor() -> None:
    row = one(pd=0.03)  # grade C: floor 10.95%
    cost = POLICY.pricing.cost
    assert cost is not None
    annual_pd = 1 - (1 - 0.03) ** (365 / cost.pd_horizon_days)
    expected = cost.funding_rate + cost.operating_rate + cost.margin + annual_pd * cost.lgd
    assert row["risk_grade"] == "C" and row["pricing_rule"] == "pricing.cost"
    assert row["expected_loss_rate"] == pytest.approx(annual_pd * cost.lgd)
    # rounded up to the basis point, never down
    assert expected <= row["offered_annual_rate"] < expected + 0.0001 + 1e-12
    assert row["offered_annual_rate"] == row["cost_rate"]


def test_the_grade_rate_is_a_floor_and_an_override() -> None:
    cheap = with_pricing(cost={"funding_rate": 0.0, "operating_rate": 0.0, "margin": 0.0, "lgd": 0.01, "pd_horizon_days": 90})  # fmt: skip
    floored = one(cheap, pd=0.03)
    assert floored["pricing_rule"] == "pricing.grade" and floored["offered_annual_rate"] == 0.1095
    overridden = one(with_pricing(grade_table="override"), pd=0.03)
    assert overridden["pricing_rule"] == "pricing.grade"
    assert overridden["offered_annual_rate"] == 0.1095
    assert overridden["cost_rate"] > 0.1095  # still computed, for the summary's margins
    no_cost = one(with_pricing(cost=None), pd=0.03)
    assert no_cost["offered_annual_rate"] == 0.1095 and no_cost["cost_rate"] is None


def test_the_cap_binds_and_the_starter_rate_prices_unscored_customers() -> None:
    capped = one(pd=0.2, previous_limit=None)  # grade F: the build-up is far above 24%
    assert capped["new_limit"] > 0
    assert capped["pricing_rule"] == "pricing.cap" and capped["offered_annual_rate"] == 0.24
    lower_cap = with_pricing(max_annual_rate=0.2, grade_rates={"A": 0.07, "B": 0.08, "C": 0.1, "D": 0.12, "E": 0.15, "F": 0.18, "G": 0.2})  # fmt: skip
    row = one(lower_cap, pd=0.05)
    assert row["offered_annual_rate"] == 0.2 and row["pricing_rule"] == "pricing.cap"
    starter = one(pd=None)
    assert starter["new_limit"] > 0
    assert starter["offered_annual_rate"] == 0.18 and starter["pricing_rule"] == "pricing.starter"


def test_a_rate_is_stored_exactly_as_decimal_8_6() -> None:
    pds = [0.003, 0.015, 0.03, 0.06, 0.1, None]
    rows = pl.DataFrame(
        priced([GOOD | {"pd": p, "customer_id": f"C{i}"} for i, p in enumerate(pds)])
    ).select("customer_id", "offered_annual_rate")
    con = duckdb.connect()
    con.execute("create table t (customer_id VARCHAR, r DECIMAL(8,6))")
    con.register("rows", rows.to_arrow())
    con.execute("insert into t select * from rows")
    stored = dict(con.execute("select customer_id, r::VARCHAR from t").fetchall())
    for cid, rate in rows.iter_rows():
        assert stored[cid] == (None if rate is None else f"{round(rate * MICRO) / MICRO:.6f}")


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 23 * 60 + 59),
    st.integers(0, 23 * 60 + 59),
    st.integers(0, 23 * 60 + 59),
    st.dates(date(2026, 1, 1), date(2027, 12, 31)),
)
def test_send_after_never_falls_in_quiet_hours_and_never_comes_early(
    send: int, start: int, end: int, day: date
) -> None:
    def hhmm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    at = send_after(day, hhmm(send), hhmm(start), hhmm(end))
    assert str(at.tzinfo) == "Asia/Shanghai"
    assert not in_quiet_hours(at.hour * 60 + at.minute, start, end)
    meant = datetime.combine(day, time(send // 60, send % 60), tzinfo=at.tzinfo)
    assert meant <= at < meant + timedelta(days=1)


def test_the_default_quiet_hours_move_an_evening_or_night_time_to_8() -> None:
    day = date(2026, 4, 29)
    assert send_after(day, "00:00", "21:00", "08:00").time() == time(8, 0)
    late = send_after(day, "22:30", "21:00", "08:00")
    assert (late.date(), late.time()) == (day + timedelta(days=1), time(8, 0))
    assert send_after(day, "09:30", "21:00", "08:00").time() == time(9, 30)
    with pytest.raises(ValueError, match="HH:MM"):
        clock_minutes("9h30")

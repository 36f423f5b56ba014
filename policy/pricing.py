"""Risk-based pricing (风险定价): the annual rate offered with every limit, and the nightly
summary of what the rates earn against what the book is expected to lose.

``price`` is pure: it adds the offer to the night's decisions. Rates are whole micro-units
(1e-6, the contract's DECIMAL(8,6)) while they are computed, so rounding is exact and a rate
only ever rounds up to the policy's step and never past the cap; the float handed to the
warehouse is already on that grid, so storing it as DECIMAL(8,6) is exact.

How a rate is set (``policy.pricing``):

- no model score yet (the starter rule): ``starter_rate`` (rule ``pricing.starter``);
- ``grade_table = "floor"`` with a ``cost`` section: the cost build-up (funding + operating
  cost + expected loss + margin), rounded up to ``rate_step``, never below the grade's rate
  (``pricing.cost`` when the build-up sets it, ``pricing.grade`` when the floor does);
- ``grade_table = "override"``, or no ``cost`` section: the grade's rate (``pricing.grade``);
  the build-up, when configured, is still computed and reported in ``pricing_summary``;
- a rate above ``max_annual_rate`` is cut to it (``pricing.cap``);
- a limit of 0 gets no rate and no rule (null): there is nothing to borrow.

Every input is monotone in pd (the grade rates cannot fall from A to G, the expected-loss rate
rises with pd), so with everything else equal a higher pd never gets a lower rate.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import polars as pl

from creditflow.policy.config import GRADE_NAMES, LimitPolicy, Pricing
from creditflow.transforms.queries import sql
from creditflow.warehouse import transaction

MICRO = 1_000_000
PRICING_RULES = ("pricing.starter", "pricing.grade", "pricing.cost", "pricing.cap")
# the columns ``price`` adds (the first two are published in limit_updates)
PRICING_COLUMNS = (
    "offered_annual_rate", "pricing_rule", "grade_rate", "cost_rate", "expected_loss_rate",
)  # fmt: skip


def micro(rate: float) -> int:
    return round(rate * MICRO)


def expected_loss_rate(pd_: pl.Expr, pricing: Pricing) -> pl.Expr:
    """The annual expected-loss rate of a pd over the model's horizon: the annualised
    probability of default times the loss given default (null without a cost section)."""
    if pricing.cost is None:
        return pl.lit(None, pl.Float64)
    years = 365 / pricing.cost.pd_horizon_days
    annual_pd = 1 - (1 - pd_.clip(0.0, 1.0)) ** years
    return annual_pd * pricing.cost.lgd


def _cost_micro(el_rate: pl.Expr, pricing: Pricing) -> pl.Expr:
    """The cost build-up in micro-units, rounded up to the rate step (null without costs)."""
    if pricing.cost is None:
        return pl.lit(None, pl.Int64)
    c = pricing.cost
    step = micro(pricing.rate_step)
    fixed = micro(c.funding_rate) + micro(c.operating_rate) + micro(c.margin)
    # round the float part to a thousandth of a micro-unit first, so 0.1370000000001 (a float
    # artefact) does not round up a whole step
    el_micro = (el_rate * MICRO * 1000).round(0) / 1000
    return ((fixed + el_micro) / step).ceil().cast(pl.Int64) * step


def price(decided: pl.DataFrame, policy: LimitPolicy) -> pl.DataFrame:
    """Add the offer to decisions that carry ``pd``, ``risk_grade`` and ``new_limit``:
    ``offered_annual_rate`` and the rule that set it, with the grade's rate, the cost
    build-up and the expected-loss rate beside them (``limits explain`` prints them)."""
    p = policy.pricing
    grade_micro = pl.col("risk_grade").replace_strict(
        list(GRADE_NAMES), [micro(p.grade_rates[g]) for g in GRADE_NAMES], return_dtype=pl.Int64
    )
    cap = micro(p.max_annual_rate)
    scored = pl.col("pd").is_not_null()
    uses_cost = p.cost is not None and p.grade_table == "floor"
    out = decided.with_columns(
        _grade=pl.when(scored).then(grade_micro),
        expected_loss_rate=pl.when(scored).then(expected_loss_rate(pl.col("pd"), p)),
    ).with_columns(_cost=pl.when(scored).then(_cost_micro(pl.col("expected_loss_rate"), p)))
    wanted = pl.max_horizontal(pl.col("_grade"), pl.col("_cost")) if uses_cost else pl.col("_grade")
    out = out.with_columns(
        _wanted=pl.when(scored).then(wanted).otherwise(pl.lit(micro(p.starter_rate), pl.Int64))
    )
    offered = pl.col("new_limit") > 0
    rule = (
        pl.when(~scored)
        .then(pl.lit("pricing.starter"))
        .when(pl.col("_wanted") > cap)
        .then(pl.lit("pricing.cap"))
        .when(pl.lit(uses_cost) & (pl.col("_cost") > pl.col("_grade")))
        .then(pl.lit("pricing.cost"))
        .otherwise(pl.lit("pricing.grade"))
    )
    return out.with_columns(
        offered_annual_rate=pl.when(offered).then(
            pl.min_horizontal(pl.col("_wanted"), pl.lit(cap)).cast(pl.Float64) / MICRO
        ),
        pricing_rule=pl.when(offered).then(rule),
        grade_rate=pl.col("_grade").cast(pl.Float64) / MICRO,
        cost_rate=pl.col("_cost").cast(pl.Float64) / MICRO,
    ).drop("_grade", "_cost", "_wanted")


# The offer each loan was booked against, kept when the loan arrives: the pricing summary then
# reads 30 days of loans instead of 30 (or 90) nights of every customer's decisions.
LOAN_OFFERS_DDL = """
create table if not exists loan_offers (
    dt DATE not null,             -- the business date the loan was delivered (and booked) on
    loan_id VARCHAR not null,
    customer_id VARCHAR not null,
    offer_dt DATE,                -- the evaluation in force: the latest before dt (null: none)
    risk_grade VARCHAR,           -- its grade (null: the starter rule, or no evaluation)
    offered_annual_rate DECIMAL(8,6)
)"""


def record_loan_offers(con: duckdb.DuckDBPyConnection, d: date) -> int:
    """Keep, for each loan delivered on ``d``, the offer in force when it was booked: its
    customer's decision of the latest evaluated night before ``d`` (a customer without one
    has none). Replaces the date's rows; returns how many loans it recorded."""
    con.execute(LOAN_OFFERS_DDL)
    with transaction(con):
        con.execute("delete from loan_offers where dt = $d", {"d": d})
        con.execute(
            """insert into loan_offers
               select $d, l.loan_id, l.customer_id, o.dt, o.risk_grade, o.offered_annual_rate
               from loans as l
               left join limit_decisions as o
                   on o.customer_id = l.customer_id
                  and o.dt = (select max(dt) from limit_decisions where dt < $d)
               where l.dt = $d""",
            {"d": d},
        )
        return int(
            con.execute("select count(*) from loan_offers where dt = $d", {"d": d}).fetchall()[0][0]
        )


def pricing_summary(
    con: duckdb.DuckDBPyConnection, d: date, policy: LimitPolicy, run_id: str
) -> duckdb.DuckDBPyRelation:
    """``pricing_summary`` for ``d`` (without dt): by risk grade, tonight's offers against the
    expected loss and costs, and the loans booked in the 30 days to ``d`` against the offer
    in force when each was booked. Reads ``limit_decisions``, ``loans`` and ``loan_offers``
    (``record_loan_offers``, kept by the limits of each night)."""
    cost = policy.pricing.cost
    return con.sql(
        sql("pricing_summary"),
        params={
            "d": d,
            "funding": cost.funding_rate if cost else None,
            "operating": cost.operating_rate if cost else None,
            "cap": policy.pricing.max_annual_rate,
            "run_id": run_id,
        },
    )


def offered_rates(con: duckdb.DuckDBPyConnection, d: date) -> dict[str, object] | None:
    """The offers of ``d``: ``priced`` (limits with a rate), ``lowest`` and ``highest``
    offered_annual_rate (Decimal), ``by_rule`` (priced limits per pricing_rule, in
    ``PRICING_RULES`` order), ``no_rate`` (limits of 0, which get none) and ``unpriced``
    (limits above 0 without a rate: decided before pricing existed). None when ``d`` has no
    decisions, or the warehouse predates pricing (migration 3 not applied yet). Only reads:
    the demo summary, the run's artifacts and ``creditflow run`` print it."""
    priced_columns = con.execute(
        "select count(*) from duckdb_columns() "
        "where table_name = 'limit_decisions' and column_name = 'offered_annual_rate'"
    ).fetchall()[0][0]
    if not priced_columns:
        return None
    rows = con.execute(
        """select pricing_rule, count(*), min(offered_annual_rate), max(offered_annual_rate),
                  count(*) filter (where new_limit = 0),
                  count(*) filter (where new_limit > 0 and offered_annual_rate is null)
           from limit_decisions where dt = $d group by 1
           order by list_position($rules, pricing_rule) nulls last""",
        {"d": d, "rules": list(PRICING_RULES)},
    ).fetchall()
    if not rows:
        return None
    priced = [r for r in rows if r[0] is not None]
    lows: list[Decimal] = [r[2] for r in priced if r[2] is not None]
    highs: list[Decimal] = [r[3] for r in priced if r[3] is not None]
    return {
        "priced": sum(r[1] for r in priced),
        "lowest": min(lows) if lows else None,
        "highest": max(highs) if highs else None,
        "by_rule": {r[0]: r[1] for r in priced},
        "no_rate": sum(r[4] for r in rows),
        "unpriced": sum(r[5] for r in rows),
    }


def describe_offers(rates: dict[str, object] | None) -> str:
    """``offered_rates`` in words, one line: the range, the rules that set it, the limits
    without a rate (the demo summary, ``creditflow run`` and the night's artifact say it)."""
    if not rates or not rates["priced"]:
        return "none (no limit above 0 was priced)"
    rules = ", ".join(f"{r} {n:,}" for r, n in rates["by_rule"].items())  # type: ignore[attr-defined]
    low, high = float(rates["lowest"]), float(rates["highest"])  # type: ignore[arg-type]
    unpriced = rates["unpriced"]
    return (
        f"{low:.2%} .. {high:.2%} for {rates['priced']:,} limits ({rules}); "
        f"{rates['no_rate']:,} limits of 0 get no rate"
        + (f"; {unpriced:,} limits decided before pricing have none" if unpriced else "")
    )

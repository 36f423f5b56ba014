"""The limit policy as a pure transform: one row of inputs per customer in, one decision out.

``decide`` applies the rules of :mod:`creditflow.policy.config` in their documented order and keeps
the limit after every rule (``after_<rule>`` columns), so ``creditflow limits explain`` shows
exactly the path a limit took, and ``policy_rule`` names the last rule that changed it.
Limits are whole yuan in multiples of ``policy.rounding`` (Int64; published as DECIMAL):
income and balances come in as integer cents, so no money passes through a float. Only pd
(a probability) and the factors the policy multiplies by are floats, and every limit derived
from them is rounded down to the rounding unit, which keeps each cap a cap.

Inputs (one row per customer): customer_id, age, occupation, status, kyc_level, city_tier,
income_cents (null when undeclared), dpd, outstanding_cents, pd (null before any model),
previous_limit (null on the first evaluation), last_increase_on (null when never).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from creditflow.models.scoring import GRADES
from creditflow.policy.config import GRADE_NAMES, LimitPolicy

ACTIONS = ("NEW", "INCREASE", "DECREASE", "UNCHANGED", "FREEZE", "CLOSE")

# The rules after the target, in order; each maps the running limit to the next.
STEPS = (
    "expected_loss",
    "cap.income",
    "cap.product",
    "delinquency.no_increase",
    "change.interval",
    "change.max_increase",
    "change.outstanding_floor",
)
# Rules that end the evaluation with a limit of 0 (with every eligibility.<reason>).
TERMINAL_RULES = ("delinquency.freeze", "model.freeze")
# Checked in this order; the first that fails is named. The reasons that cannot come back
# (CLOSE) come first, so a closed or over-age customer is never merely frozen.
ELIGIBILITY = (
    "status_closed",
    "over_max_age",
    "status_blocked",
    "under_min_age",
    "occupation",
    "kyc",
)

INPUT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "customer_id": pl.String,
    "age": pl.Int64,
    "occupation": pl.String,
    "status": pl.String,
    "kyc_level": pl.Int64,
    "city_tier": pl.Int64,
    "income_cents": pl.Int64,
    "dpd": pl.Int64,
    "outstanding_cents": pl.Int64,
    "pd": pl.Float64,
    "previous_limit": pl.Int64,
    "last_increase_on": pl.Date,
}


def step_column(rule: str) -> str:
    return "after_" + rule.replace(".", "_")


def _floor(expr: pl.Expr, unit: int) -> pl.Expr:
    """Round a non-negative amount (yuan, maybe fractional) down to the unit, as Int64."""
    return ((expr / unit).floor() * unit).cast(pl.Int64)


def _floor_cents(cents: pl.Expr, factor: float, unit: int) -> pl.Expr:
    """factor x an amount in cents, rounded down to the unit in yuan."""
    return _floor(cents.cast(pl.Float64) * factor / 100, unit)


def _by_grade(grade: pl.Expr, values: dict[str, float | int], dtype: type[pl.DataType]) -> pl.Expr:
    return grade.replace_strict(list(values), list(values.values()), return_dtype=dtype)


def grade_of(pd_: pl.Expr) -> pl.Expr:
    """The risk grade of a pd, by the same bands as models.scoring.grades (upper bound exclusive)."""
    expr = pl.lit("G")
    for name, bound in reversed(GRADES):
        expr = pl.when(pd_ < bound).then(pl.lit(name)).otherwise(expr)
    return pl.when(pd_.is_null()).then(None).otherwise(expr)


def _eligibility(policy: LimitPolicy) -> pl.Expr:
    """The first reason a customer is not eligible, or null."""
    e = policy.eligibility
    # Only the birth year is known, so age is the age reached this year: someone who turns 18
    # this year may still be 17 (not eligible until the next year), someone who turns 66 may
    # still be 65 (no longer eligible). Both ends err on the side of the rule.
    checks = {
        "status_closed": (pl.col("status") == "CLOSED").fill_null(False),
        "over_max_age": (pl.col("age") > e.max_age).fill_null(False),
        "status_blocked": (pl.col("status") != "ACTIVE").fill_null(True),
        "under_min_age": (pl.col("age") - 1 < e.min_age).fill_null(True),
        "occupation": pl.col("occupation").is_in(list(e.excluded_occupations)).fill_null(True),
        "kyc": (pl.col("kyc_level") < e.min_kyc_level).fill_null(True),
    }
    expr = pl.lit(None, dtype=pl.String)
    for reason in reversed(ELIGIBILITY):
        expr = pl.when(checks[reason]).then(pl.lit(reason)).otherwise(expr)
    return expr


def _band_target(policy: LimitPolicy) -> pl.Expr:
    unit, bands = policy.rounding, policy.bands
    amount = _by_grade(
        pl.col("risk_grade"), {g: bands.grade(g).amount for g in GRADE_NAMES}, pl.Int64
    )
    multiple = _by_grade(
        pl.col("risk_grade"), {g: bands.grade(g).income_multiple for g in GRADE_NAMES}, pl.Float64
    )
    by_income = _floor(pl.col("income_cents").cast(pl.Float64) * multiple / 100, unit)
    return (
        pl.when(pl.col("income_cents").is_null())
        .then(_floor(amount * bands.unknown_income_share, unit))
        .otherwise(pl.min_horizontal(amount, by_income))
    )


def _starter_target(policy: LimitPolicy) -> pl.Expr:
    s, unit = policy.starter, policy.rounding
    amount = pl.col("kyc_level").replace_strict(
        list(s.amount_by_kyc), list(s.amount_by_kyc.values()), default=0, return_dtype=pl.Int64
    )
    factor = pl.col("city_tier").replace_strict(
        list(s.city_tier_factor),
        list(s.city_tier_factor.values()),
        default=min(s.city_tier_factor.values()),
        return_dtype=pl.Float64,
    )
    base = _floor(amount * factor, unit)
    return (
        pl.when(pl.col("income_cents").is_null())
        .then(_floor(base * s.unknown_income_share, unit))
        .otherwise(
            pl.min_horizontal(base, _floor_cents(pl.col("income_cents"), s.income_multiple, unit))
        )
    )


def decide(inputs: pl.DataFrame, run_date: date, policy: LimitPolicy) -> pl.DataFrame:
    """Apply the policy to every row of ``inputs``; adds the trace, new_limit, action, policy_rule."""
    unit = policy.rounding
    # other input columns (exact DECIMAL money for the record, say) pass through untouched
    df = inputs.with_columns([pl.col(c).cast(t) for c, t in INPUT_SCHEMA.items()])
    el_budget = {g: policy.bands.grade(g).el_budget for g in GRADE_NAMES}
    income_cap = _floor_cents(pl.col("income_cents"), policy.income_multiple, unit)
    hard_cap = pl.min_horizontal(pl.lit(policy.product_cap, pl.Int64), income_cap)
    first = pl.col("previous_limit").is_null()
    prev = pl.col("previous_limit")
    ceil_outstanding = (
        (pl.col("outstanding_cents").fill_null(0) + unit * 100 - 1) // (unit * 100) * unit
    )
    step = _floor(
        pl.min_horizontal(
            pl.lit(float(policy.change.max_increase_amount)),
            pl.max_horizontal(
                prev.cast(pl.Float64) * policy.change.max_increase_share,
                pl.lit(float(policy.change.min_increase_step)),
            ),
        ),
        unit,
    )
    recent_increase = (
        pl.lit(run_date) - pl.col("last_increase_on")
    ).dt.total_days() < policy.change.min_days_between_increases

    df = df.with_columns(
        risk_grade=grade_of(pl.col("pd")),
        eligibility=_eligibility(policy),
        hard_cap=hard_cap,
        dpd=pl.col("dpd").fill_null(0),
    ).with_columns(
        terminal=pl.when(pl.col("eligibility").is_not_null())
        .then(pl.lit("eligibility.") + pl.col("eligibility"))
        .when(pl.col("dpd") >= policy.delinquency.freeze_dpd)
        .then(pl.lit("delinquency.freeze"))
        .when(pl.col("pd") >= policy.model.freeze_pd)
        .then(pl.lit("model.freeze")),
        target_rule=pl.when(pl.col("pd").is_null()).then(pl.lit("starter")).otherwise(pl.lit("band")),
        after_target=pl.when(pl.col("pd").is_null())
        .then(_starter_target(policy))
        .otherwise(_band_target(policy)),
    )  # fmt: skip

    rules: dict[str, pl.Expr] = {
        "expected_loss": pl.when(pl.col("pd").is_null())
        .then(pl.col("running"))
        .otherwise(
            pl.min_horizontal(
                pl.col("running"),
                _floor(
                    _by_grade(pl.col("risk_grade"), el_budget, pl.Float64)
                    / (pl.col("pd").clip(lower_bound=1e-9) * policy.model.lgd),
                    unit,
                ),
            )
        ),
        "cap.income": pl.min_horizontal(pl.col("running"), income_cap),
        "cap.product": pl.min_horizontal(pl.col("running"), pl.lit(policy.product_cap, pl.Int64)),
        # a first evaluation counts as an increase from nothing: a customer in arrears gets none
        "delinquency.no_increase": pl.when(pl.col("dpd") >= policy.delinquency.no_increase_dpd)
        .then(pl.min_horizontal(pl.col("running"), prev.fill_null(0)))
        .otherwise(pl.col("running")),
        "change.interval": pl.when(~first & recent_increase.fill_null(False))
        .then(pl.min_horizontal(pl.col("running"), prev))
        .otherwise(pl.col("running")),
        "change.max_increase": pl.when(~first)
        .then(pl.min_horizontal(pl.col("running"), prev + step))
        .otherwise(pl.col("running")),
        "change.outstanding_floor": pl.when(~first & (pl.col("running") < prev))
        .then(
            pl.max_horizontal(
                pl.col("running"), pl.min_horizontal(prev, ceil_outstanding, pl.col("hard_cap"))
            )
        )
        .otherwise(pl.col("running")),
    }
    df = df.with_columns(running=pl.col("after_target"))
    for rule in STEPS:
        df = df.with_columns(rules[rule].alias("running")).with_columns(
            pl.col("running").alias(step_column(rule))
        )

    # The binding rule: the last one that changed the limit, else the target's rule (each
    # pass wraps the ladder, so the latest rule is tested first).
    binding = pl.col("target_rule")
    previous_col = "after_target"
    for rule in STEPS:
        binding = (
            pl.when(pl.col(step_column(rule)) != pl.col(previous_col))
            .then(pl.lit(rule))
            .otherwise(binding)
        )
        previous_col = step_column(rule)
    closing = list(policy.eligibility.close_when)
    out = (
        df.with_columns(
            new_limit=pl.when(pl.col("terminal").is_not_null())
            .then(0)
            .otherwise(pl.col("running")),
            policy_rule=pl.coalesce(pl.col("terminal"), binding),
        )
        .with_columns(
            action=pl.when(pl.col("eligibility").is_in(closing))
            .then(pl.lit("CLOSE"))
            .when(pl.col("terminal").is_not_null())
            .then(pl.lit("FREEZE"))
            .when(first)
            .then(pl.lit("NEW"))
            .when(pl.col("new_limit") > prev)
            .then(pl.lit("INCREASE"))
            .when(pl.col("new_limit") < prev)
            .then(pl.lit("DECREASE"))
            .otherwise(pl.lit("UNCHANGED")),
            # the state the next evaluation reads: NEW and INCREASE start the interval anew
            increased_on=pl.when(
                pl.col("terminal").is_null()
                & (pl.col("new_limit") > prev.fill_null(0))  # a NEW limit of 0 starts nothing
            )
            .then(pl.lit(run_date))
            .otherwise(pl.col("last_increase_on")),
        )
        .drop("running")
    )
    return _checked(out)


def _checked(out: pl.DataFrame) -> pl.DataFrame:
    """The contract's caps, checked on every row: a policy edit or a bug must never publish a
    limit outside them (this raises; the previous night's limits stay published)."""
    broken = out.filter(
        (pl.col("new_limit") < 0)
        | (pl.col("new_limit") > pl.col("hard_cap"))
        | (pl.col("new_limit") % 100 != 0)
    )
    if broken.height:
        row = broken.row(0, named=True)
        raise ValueError(
            f"{broken.height} limits break the caps (0 <= limit <= product and income caps, a "
            f"multiple of 100), e.g. customer {row['customer_id']}: {row['new_limit']} with hard "
            f"cap {row['hard_cap']} under rule {row['policy_rule']}; check the policy file"
        )
    return out

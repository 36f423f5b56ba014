"""How one customer's limit for one date was reached, rule by rule, from the stored decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from creditflow.policy.ladder import STEPS, TERMINAL_RULES, step_column
from creditflow.policy.pricing import PRICING_COLUMNS


@dataclass(frozen=True)
class Explanation:
    """How one customer's limit for one date was reached, rule by rule."""

    business_date: date
    inputs: dict[str, object]
    steps: list[tuple[str, object, bool]]  # rule, limit after it, whether it changed the limit
    terminal: str | None
    new_limit: object
    action: str
    policy_rule: str
    reason_codes: list[str]
    policy_version: str
    model_version: str | None
    run_id: str
    # the offer: offered_annual_rate, pricing_rule, grade_rate, cost_rate, expected_loss_rate
    # (None on a limit of 0, and on nights evaluated before pricing existed)
    pricing: dict[str, object]


EXPLAIN_INPUTS = (
    "age", "occupation", "status", "kyc_level", "city_tier", "declared_monthly_income", "dpd",
    "outstanding_balance", "pd", "score", "risk_grade", "previous_limit", "last_increase_on",
    "hard_cap",
)  # fmt: skip


def explain(
    con: duckdb.DuckDBPyConnection, customer_id: str, d: date | None = None
) -> Explanation | None:
    """The stored decision for the customer on ``d`` (default: the latest evaluated date)."""
    rel = con.sql(
        "select * from limit_decisions where customer_id = $c "
        "and ($d::DATE is null or dt = $d) order by dt desc limit 1",
        params={"c": customer_id, "d": d},
    )
    rows = rel.fetchall()
    if not rows:
        return None
    row = dict(zip(rel.columns, rows[0], strict=True))
    steps: list[tuple[str, object, bool]] = [(row["target_rule"], row["after_target"], True)]
    for rule in STEPS:
        value = row[step_column(rule)]
        steps.append((rule, value, value != steps[-1][1]))
    rule = row["policy_rule"]
    terminal = rule if rule.startswith("eligibility.") or rule in TERMINAL_RULES else None
    return Explanation(
        business_date=row["dt"],
        inputs={k: row[k] for k in EXPLAIN_INPUTS},
        steps=steps,
        terminal=terminal,
        new_limit=row["new_limit"],
        action=row["action"],
        policy_rule=row["policy_rule"],
        reason_codes=list(row["reason_codes"]),
        policy_version=row["policy_version"],
        model_version=row["model_version"],
        run_id=row["run_id"],
        pricing={k: row.get(k) for k in PRICING_COLUMNS},
    )

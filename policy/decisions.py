"""Limit decisions: score every customer, apply the rule ladder, attach reason codes.

The pure parts are the model's scores (models.scoring) and the rule ladder
(policy.ladder.decide). ``decision_rows`` is the kernel of the ``LIMITS`` stage: it runs on
the warehouse, or on each customer shard of a cluster, and returns the rows of
``limit_decisions`` (every rule's intermediate limit, which ``creditflow limits explain``
prints). The published ``limit_updates`` partition carries the contract's columns plus the
policy version, dpd and outstanding balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from creditflow.models.champion import Champion
from creditflow.models.dataset import Frame, population
from creditflow.models.scoring import reason_codes, reference_contributions, score_population
from creditflow.policy.config import LimitPolicy
from creditflow.policy.ladder import ACTIONS, STEPS, decide, step_column
from creditflow.policy.pricing import price, record_loan_offers
from creditflow.transforms.features import CUSTOMERS_TO_DATE
from creditflow.transforms.inputs import Slice, Stage, StageRunner, run_in_process
from creditflow.transforms.ledger import ensure_ledger_schema
from creditflow.transforms.queries import sql
from creditflow.warehouse import ensure_schema, transaction

# adverse actions carry reasons: the customer (and customer_notices) is told why
ADVERSE = ("DECREASE", "FREEZE", "CLOSE")
TRACE = ("after_target", *(step_column(r) for r in STEPS))

DECISIONS_DDL = f"""
create table if not exists limit_decisions (
    dt DATE not null,
    customer_id VARCHAR not null,
    age BIGINT, occupation VARCHAR, status VARCHAR, kyc_level BIGINT, city_tier BIGINT,
    declared_monthly_income DECIMAL(18,2), dpd BIGINT not null,
    outstanding_balance DECIMAL(18,2) not null,
    model_version VARCHAR, pd DOUBLE, score INTEGER, risk_grade VARCHAR,
    previous_limit DECIMAL(18,2), last_increase_on DATE,
    eligibility VARCHAR, hard_cap DECIMAL(18,2), target_rule VARCHAR not null,
    {", ".join(f"{c} DECIMAL(18,2)" for c in TRACE)},
    new_limit DECIMAL(18,2) not null, action VARCHAR not null, policy_rule VARCHAR not null,
    reason_codes VARCHAR[] not null, increased_on DATE,
    effective_from DATE not null, policy_version VARCHAR not null, run_id VARCHAR not null,
    -- the offer (policy.pricing); added by migration 3, so last
    offered_annual_rate DECIMAL(8,6), pricing_rule VARCHAR, grade_rate DECIMAL(8,6),
    cost_rate DECIMAL(8,6), expected_loss_rate DOUBLE
)"""

# the contract's limit_updates columns (dt lives in the path), then additions
PUBLISHED = (
    "customer_id", "model_version", "pd", "score", "risk_grade", "previous_limit", "new_limit",
    "action", "policy_rule", "reason_codes", "effective_from", "run_id",
    "policy_version", "dpd", "outstanding_balance", "offered_annual_rate", "pricing_rule",
)  # fmt: skip


@dataclass(frozen=True)
class LimitsResult:
    business_date: date
    model_version: str | None
    policy_version: str
    customers: int
    actions: dict[str, int]
    reasons_computed: int


def ensure_limits_schema(con: duckdb.DuckDBPyConnection) -> None:
    ensure_ledger_schema(con)
    con.execute(DECISIONS_DDL)


# Adverse actions the model drove: their reasons are the features that pushed the risk up.
MODEL_RULES = ("band", "expected_loss", "model.freeze", "change.outstanding_floor")
# Adverse actions a rule drove: their reason is the rule, in plain words.
RULE_REASONS = {
    "eligibility.status_closed": "account closed",
    "eligibility.over_max_age": "above the maximum age",
    "eligibility.status_blocked": "account not active",
    "eligibility.under_min_age": "below the minimum age",
    "eligibility.occupation": "occupation not eligible",
    "eligibility.kyc": "identity verification level too low",
    "delinquency.freeze": "30 or more days past due",
    "cap.income": "limit capped at a multiple of declared income",
    "cap.product": "limit capped at the product maximum",
    "starter": "starter limit from application data (no model yet)",
}
# When the model drove an adverse action but no feature sits above the reference (the safest
# tenth), the model's rule in words stands in, so every adverse action has a reason.
MODEL_RULE_REASONS = {
    "band": "overall estimated risk for the risk grade",
    "expected_loss": "overall estimated risk for the expected-loss budget",
    "model.freeze": "overall estimated risk above the policy's threshold",
    "change.outstanding_floor": "overall estimated risk for the risk grade",
}


# the adverse actions the model drove: their reasons are the features that pushed risk up
MODEL_DRIVEN = (
    pl.col("action").is_in(ADVERSE)
    & pl.col("pd").is_not_null()
    & pl.col("policy_rule").is_in(MODEL_RULES)
)
NO_SCORES = pl.DataFrame(schema={"customer_id": pl.String, "pd": pl.Float64, "score": pl.Int32})


def _in_words(rules: dict[str, str]) -> pl.Expr:
    """The binding rule in plain words, as a one-reason list (the rule's name when unlisted)."""
    rule = pl.col("policy_rule")
    words = rule.replace_strict(rules, default=rule, return_dtype=pl.String)
    return pl.concat_list(words).alias("reason_codes")


def _with_reasons(
    decided: pl.DataFrame,
    champion: Champion | None,
    frame: Frame | None,
    reference: np.ndarray | None,
) -> pl.DataFrame:
    """reason_codes for every DECREASE, FREEZE and CLOSE: the model's features where the model
    drove it, the rule's plain reason otherwise; empty for the other actions. Exact contributions
    cost about a millisecond a row, so only the model-driven adverse rows pay for them,
    measured against the population's ``reference``."""
    adverse = pl.col("action").is_in(ADVERSE)
    wanted = decided.filter(MODEL_DRIVEN).select("customer_id", "policy_rule")
    parts = [decided.filter(adverse & ~MODEL_DRIVEN).select("customer_id", _in_words(RULE_REASONS))]
    if champion is not None and frame is not None and wanted.height:
        x = frame.x
        index = pl.DataFrame(
            {"customer_id": frame.customer_id.astype(str), "row": np.arange(len(x))}
        )
        rows = wanted.join(index, on="customer_id", how="left", maintain_order="left")["row"]
        if rows.null_count():
            raise AssertionError("a scored customer is missing from the feature matrix")
        codes = reason_codes(
            champion.booster, x[rows.to_numpy()], champion.names, reference=reference
        )
        # a row whose features all sit at or below the reference has no feature to name: its
        # rule in words stands in, so no adverse action goes out without a reason
        parts.append(
            wanted.with_columns(pl.Series("codes", codes, pl.List(pl.String))).select(
                "customer_id",
                pl.when(pl.col("codes").list.len() > 0)
                .then(pl.col("codes"))
                .otherwise(_in_words(MODEL_RULE_REASONS))
                .alias("reason_codes"),
            )
        )
    reasons = pl.concat(parts, how="vertical")
    out = decided.join(reasons, on="customer_id", how="left", maintain_order="left")
    return out.with_columns(pl.col("reason_codes").fill_null(pl.lit([], pl.List(pl.String))))


def score_book(
    con: duckdb.DuckDBPyConnection, d: date, champion: Champion, frame: Frame | None = None
) -> tuple[Frame, pl.DataFrame, np.ndarray]:
    """Tonight's features, every customer's pd and score, and the reason codes' reference
    (the mean contributions of the safest tenth): once a night over the whole book, so a
    shard's scores and reasons are the ones the whole book gives."""
    frame = frame if frame is not None else population(con, d)
    scores = score_population(con, d, champion.booster, champion.names, frame)
    pd_ = scores["pd"].to_numpy()
    reference = reference_contributions(champion.booster, frame.x, champion.names, pd_)
    return frame, scores.drop("risk_grade"), reference


def decide_limits(
    con: duckdb.DuckDBPyConnection,
    d: date,
    policy: LimitPolicy,
    champion: Champion | None,
    run_id: str,
    frame: Frame | None = None,
    scores: pl.DataFrame | None = None,
    reference: np.ndarray | None = None,
) -> pl.DataFrame:
    """The decisions of every customer ``con`` knows on ``d``, in ``limit_decisions``'
    columns: the whole book, or one shard of it with its part of ``frame`` and ``scores``
    and the population's ``reference`` (``score_book``; computed here when not given).
    Stores nothing."""
    ensure_limits_schema(con)
    inputs = pl.from_arrow(con.sql(sql("limit_inputs"), params={"d": d}).to_arrow_table())
    assert isinstance(inputs, pl.DataFrame)
    if champion is not None and scores is None:
        frame, scores, reference = score_book(con, d, champion, frame)
    inputs = inputs.join(scores if scores is not None else NO_SCORES, on="customer_id", how="left")
    decided = price(_with_reasons(decide(inputs, d, policy), champion, frame, reference), policy)
    decided = decided.with_columns(
        pl.lit(d).alias("dt"),
        pl.lit(champion.version if champion else None, pl.String).alias("model_version"),
        pl.lit(d + timedelta(days=1)).alias("effective_from"),
        pl.lit(policy.full_version).alias("policy_version"),
        pl.lit(run_id).alias("run_id"),
    )
    columns = [c for c in _table_columns(con) if c in decided.columns]
    missing = set(_table_columns(con)) - set(columns)
    if missing:
        raise AssertionError(f"limit_decisions columns not produced: {sorted(missing)}")
    return decided.select(columns)


def decision_rows(
    con: duckdb.DuckDBPyConnection,
    d: date,
    *,
    policy: LimitPolicy,
    champion: Champion | None,
    run_id: str,
    frame: Frame | None,
    scores: pl.DataFrame | None,
    reference: np.ndarray | None,
) -> pa.Table:
    """The kernel of the limits stage: ``decide_limits`` as an Arrow table."""
    return decide_limits(con, d, policy, champion, run_id, frame, scores, reference).to_arrow()


def reasons_computed(decided: pl.DataFrame) -> int:
    """Rows whose reason codes needed exact contributions: the model-driven adverse ones."""
    return decided.filter(MODEL_DRIVEN).height


def store_decisions(con: duckdb.DuckDBPyConnection, d: date, decided: pl.DataFrame) -> None:
    """Replace the date's rows of ``limit_decisions`` with ``decided``, in one transaction."""
    columns = decided.columns
    con.register("decided_frame", decided.to_arrow())
    try:
        with transaction(con):
            con.execute("delete from limit_decisions where dt = $d", {"d": d})
            con.execute(
                f"insert into limit_decisions ({', '.join(columns)}) "
                f"select {', '.join(columns)} from decided_frame"
            )
    finally:
        con.unregister("decided_frame")


def summarize(
    decided: pl.DataFrame,
    d: date,
    policy: LimitPolicy,
    champion: Champion | None,
) -> LimitsResult:
    actions = dict(decided.group_by("action").len().sort("action").iter_rows())
    return LimitsResult(
        business_date=d,
        model_version=champion.version if champion else None,
        policy_version=policy.full_version,
        customers=decided.height,
        actions={a: int(actions.get(a, 0)) for a in ACTIONS},
        reasons_computed=reasons_computed(decided),
    )


def evaluate_limits(
    con: duckdb.DuckDBPyConnection,
    d: date,
    policy: LimitPolicy,
    champion: Champion | None,
    run_id: str,
    frame: Frame | None = None,
    *,
    run: StageRunner = run_in_process,
) -> tuple[pl.DataFrame, LimitsResult]:
    """Decide every known customer's limit for the day after ``d`` and store the decisions.
    The book is scored once here (``frame``: tonight's features, when the night built them);
    ``run`` runs the LIMITS stage: here, or where the step's executor runs it, each shard
    with its part of the features and scores."""
    ensure_limits_schema(con)  # a first night has no decisions yet
    scores = reference = None
    if champion is not None:
        frame, scores, reference = score_book(con, d, champion, frame)
    else:
        frame = None  # the starter rule reads no features
    rows = run(
        con,
        LIMITS,
        d,
        policy=policy,
        champion=champion,
        run_id=run_id,
        frame=frame,
        scores=scores,
        reference=reference,
    )
    decided = pl.from_arrow(rows)
    assert isinstance(decided, pl.DataFrame)
    decided = decided.sort("customer_id", maintain_order=True)
    store_decisions(con, d, decided)
    # the offers tonight's loans were booked on (yesterday's decisions), for pricing_summary
    record_loan_offers(con, d)
    return decided, summarize(decided, d, policy, champion)


def _table_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select column_name from duckdb_columns() where table_name = 'limit_decisions' "
        "and schema_name = current_schema() order by column_index"
    ).fetchall()
    return [r[0] for r in rows]


def limit_updates(con: duckdb.DuckDBPyConnection, d: date) -> duckdb.DuckDBPyRelation:
    """The published rows of a date, from the stored decisions (money as DECIMAL(18,2))."""
    return con.sql(
        f"select {', '.join(PUBLISHED)} from limit_decisions where dt = $d order by customer_id",
        params={"d": d},
    )


def action_counts(con: duckdb.DuckDBPyConnection, d: date) -> list[tuple[str, int, int]]:
    """(action, customers on ``d``, customers over every night), in the ladder's order."""
    order = ", ".join(f"'{a}'" for a in ACTIONS)
    return con.execute(
        f"""select action, count(*) filter (where dt = $d), count(*)
            from limit_decisions group by action
            order by list_position([{order}], action)""",
        {"d": d},
    ).fetchall()


def limits_by_grade(con: duckdb.DuckDBPyConnection, d: date) -> list[tuple]:
    """(grade, customers, median, mean and max limit, customers at 0) on ``d``; customers
    without a grade (the starter rule) as '(starter)'."""
    return con.execute(
        """select coalesce(risk_grade, '(starter)'), count(*), median(new_limit), avg(new_limit),
                  max(new_limit), count(*) filter (where new_limit = 0)
           from limit_decisions where dt = $d group by all order by 1""",
        {"d": d},
    ).fetchall()


def first_with_action(con: duckdb.DuckDBPyConnection, d: date, action: str) -> str | None:
    """The first customer (by id) with ``action`` on ``d``: an example worth explaining."""
    rows = con.execute(
        """select customer_id from limit_decisions where dt = $d and action = $a
           order by customer_id limit 1""",
        {"d": d, "a": action},
    ).fetchall()
    return rows[0][0] if rows else None


def _setup(con: duckdb.DuckDBPyConnection) -> None:
    ensure_schema(con)
    ensure_limits_schema(con)


# What limit_inputs.sql reads for date $d, by customer: customer versions up to the date, the
# ledger's state on it, and the previous evaluation's decisions. Tonight's features and scores
# arrive as the ``frame`` and ``scores`` arguments (``score_book``), split by shard on a cluster.
LIMITS = Stage(
    name="limits",
    slices=(
        CUSTOMERS_TO_DATE,
        Slice("loan_daily", "select *, customer_id as shard_key from loan_daily where dt = $d"),
        Slice(
            "limit_decisions",
            """select *, customer_id as shard_key from limit_decisions
               where dt = (select max(dt) from limit_decisions where dt < $d)""",
        ),
    ),
    setup=_setup,
    kernel=decision_rows,
    sharded_args=("frame", "scores"),
)

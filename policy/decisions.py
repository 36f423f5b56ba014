"""Score every customer, apply the limit policy, keep the decisions and publish limit_updates.

IO at the edges around two pure parts: the model's scores (models.scoring) and the policy
(transforms.limits.decide). Decisions, with every rule's intermediate limit, stay in the
warehouse table ``limit_decisions`` (the state the next night reads, and what ``creditflow
limits explain`` prints); the published ``limit_updates`` partition carries the contract's
columns plus the policy version, dpd and outstanding balance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import xgboost as xgb

from creditflow.catalog import PublishedPartition, publish_partition
from creditflow.execution import client_for
from creditflow.models.dataset import Frame, population
from creditflow.models.registry import Registry
from creditflow.models.scoring import reason_codes, reference_contributions, score_population
from creditflow.policy import LimitPolicy, load_policy
from creditflow.settings import Settings
from creditflow.transforms.ledger import ensure_ledger_schema, sql
from creditflow.transforms.limits import ACTIONS, STEPS, TERMINAL_RULES, decide, step_column
from creditflow.warehouse import open_warehouse, transaction

ADVERSE = ("DECREASE", "FREEZE")
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
    effective_from DATE not null, policy_version VARCHAR not null, run_id VARCHAR not null
)"""

# the contract's limit_updates columns (dt lives in the path), then additions
PUBLISHED = (
    "customer_id", "model_version", "pd", "score", "risk_grade", "previous_limit", "new_limit",
    "action", "policy_rule", "reason_codes", "effective_from", "run_id",
    "policy_version", "dpd", "outstanding_balance",
)  # fmt: skip


@dataclass(frozen=True)
class Champion:
    version: str
    booster: xgb.Booster
    names: list[str]

    @classmethod
    def load(cls, registry: Registry, as_of: date | None = None) -> Champion | None:
        """The champion in force for business date ``as_of`` (the current one when None)."""
        version = registry.champion(as_of)
        if version is None:
            return None
        booster, card = registry.load(version)
        return cls(version, booster, list(card["features"]["names"]))


@dataclass(frozen=True)
class LimitsResult:
    business_date: date
    model_version: str | None
    policy_version: str
    customers: int
    actions: dict[str, int]
    reasons_computed: int
    published: PublishedPartition | None = None


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


def _with_reasons(
    decided: pl.DataFrame,
    champion: Champion | None,
    frame: Frame | None,
    pd_: np.ndarray | None,
    reference: np.ndarray | None = None,
) -> tuple[pl.DataFrame, int]:
    """reason_codes for every DECREASE and FREEZE: the model's features where the model drove
    it, the rule's plain reason otherwise; empty for the other actions. Exact contributions
    cost about a millisecond a row, so only the model-driven adverse rows pay for them.
    ``reference``: the population's reference contributions, when ``frame`` is one shard."""
    adverse = pl.col("action").is_in(ADVERSE)
    model_driven = adverse & pl.col("pd").is_not_null() & pl.col("policy_rule").is_in(MODEL_RULES)
    wanted = decided.filter(model_driven).select("customer_id")
    parts = [
        decided.filter(adverse & ~model_driven).select(
            "customer_id",
            pl.concat_list(
                pl.col("policy_rule")
                .replace_strict(RULE_REASONS, default=None, return_dtype=pl.String)
                .fill_null(pl.col("policy_rule"))
            ).alias("reason_codes"),
        )
    ]
    if champion is not None and frame is not None and pd_ is not None and wanted.height:
        x = frame.x
        index = pl.DataFrame(
            {"customer_id": frame.customer_id.astype(str), "row": np.arange(len(x))}
        )
        rows = wanted.join(index, on="customer_id", how="left", maintain_order="left")["row"]
        if rows.null_count():
            raise AssertionError("a scored customer is missing from the feature matrix")
        # relative to the safest tenth of tonight's customers, so that every customer riskier
        # than them has at least one reason (contributions against the bias may all be negative)
        if reference is None:
            reference = reference_contributions(champion.booster, x, champion.names, pd_)
        codes = reason_codes(
            champion.booster, x[rows.to_numpy()], champion.names, reference=reference
        )
        parts.append(wanted.with_columns(pl.Series("reason_codes", codes, pl.List(pl.String))))
    reasons = pl.concat(parts, how="vertical") if parts else None
    out = (
        decided.join(reasons, on="customer_id", how="left", maintain_order="left")
        if reasons is not None
        else decided
    )
    return out.with_columns(
        pl.col("reason_codes").fill_null(pl.lit([], pl.List(pl.String)))
    ), wanted.height


def decide_limits(
    con: duckdb.DuckDBPyConnection,
    d: date,
    policy: LimitPolicy,
    champion: Champion | None,
    run_id: str,
    frame: Frame | None = None,
    reference: np.ndarray | None = None,
) -> tuple[pl.DataFrame, int]:
    """The decisions of every customer ``con`` knows on ``d`` (the whole book, or one shard
    of it with the population's ``reference``), in ``limit_decisions``' columns; and how
    many rows needed exact contributions for their reason codes. Stores nothing."""
    ensure_limits_schema(con)
    inputs = pl.from_arrow(con.sql(sql("limit_inputs"), params={"d": d}).to_arrow_table())
    assert isinstance(inputs, pl.DataFrame)
    scores = pl.DataFrame(schema={"customer_id": pl.String, "pd": pl.Float64, "score": pl.Int32})
    if champion is not None:
        frame = frame if frame is not None else population(con, d)
        scores = score_population(con, d, champion.booster, champion.names, frame).drop("risk_grade")  # fmt: skip
    inputs = inputs.join(scores, on="customer_id", how="left")
    decided = decide(inputs, d, policy)

    pd_ = scores["pd"].to_numpy() if champion is not None else None  # in the frame's row order
    decided, computed = _with_reasons(decided, champion, frame, pd_, reference)
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
    return decided.select(columns), computed


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
    computed: int,
) -> LimitsResult:
    actions = dict(decided.group_by("action").len().sort("action").iter_rows())
    return LimitsResult(
        business_date=d,
        model_version=champion.version if champion else None,
        policy_version=policy.full_version,
        customers=decided.height,
        actions={a: int(actions.get(a, 0)) for a in ACTIONS},
        reasons_computed=computed,
    )


def evaluate_limits(
    con: duckdb.DuckDBPyConnection,
    d: date,
    policy: LimitPolicy,
    champion: Champion | None,
    run_id: str,
    frame: Frame | None = None,
) -> tuple[pl.DataFrame, LimitsResult]:
    """Decide every known customer's limit for the day after ``d``; store the decisions."""
    decided, computed = decide_limits(con, d, policy, champion, run_id, frame)
    store_decisions(con, d, decided)
    return decided, summarize(decided, d, policy, champion, computed)


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


def publish_limits(
    con: duckdb.DuckDBPyConnection, d: date, published_dir: Path
) -> PublishedPartition:
    return publish_partition(limit_updates(con, d), published_dir, "limit_updates", d)


def run_limits(
    settings: Settings,
    d: date,
    *,
    run_id: str | None = None,
    policy: LimitPolicy | None = None,
    frame: Frame | None = None,
) -> LimitsResult:
    """Score and decide with the champion in force on ``d`` (or the starter rule), publish
    limit_updates. The nightly run passes the policy it recorded and the features it built.
    With a distributed execution setting, customers are decided in shards on the cluster."""
    run_id = run_id or f"limits-{d.isoformat()}"
    policy = policy or load_policy(settings.policy_file)
    champion = Champion.load(Registry(settings.models_dir), d)
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        if settings.distributed:
            from creditflow.shard_customers import sharded_decisions

            with client_for(settings) as client:
                assert client is not None
                decided, computed = sharded_decisions(
                    con,
                    d,
                    policy,
                    champion,
                    run_id,
                    frame,
                    client=client,
                    shards=settings.shards,
                    root=settings.shard_dir,
                    models_dir=settings.models_dir,
                )
            store_decisions(con, d, decided)
            result = summarize(decided, d, policy, champion, computed)
        else:
            _, result = evaluate_limits(con, d, policy, champion, run_id, frame)
        part = publish_limits(con, d, settings.published_dir)
    return replace(result, published=part)


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
    )

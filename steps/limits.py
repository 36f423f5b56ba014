"""The limits step: score every customer with the champion in force, apply the limit policy,
keep the decisions and publish ``limit_updates`` (the rules are in policy.decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from creditflow.execution import executor_for
from creditflow.models.champion import Champion
from creditflow.models.dataset import Frame
from creditflow.models.registry import Registry
from creditflow.policy.config import LimitPolicy, load_policy
from creditflow.policy.decisions import (
    LIMITS,
    LimitsResult,
    ensure_limits_schema,
    limit_updates,
    reference_for,
    store_decisions,
    summarize,
)
from creditflow.publish import PublishedPartition, publish_partition
from creditflow.settings import Settings
from creditflow.steps.population import build_population
from creditflow.warehouse import open_warehouse


@dataclass(frozen=True)
class LimitsOutcome:
    result: LimitsResult
    published: PublishedPartition


def run_limits(
    settings: Settings,
    d: date,
    *,
    run_id: str | None = None,
    policy: LimitPolicy | None = None,
    frame: Frame | None = None,
) -> LimitsOutcome:
    """Score and decide with the champion in force on ``d`` (or the starter rule), store the
    decisions and publish limit_updates. The nightly run passes the policy it recorded and
    the features it built; by hand both are read here."""
    run_id = run_id or f"limits-{d.isoformat()}"
    policy = policy or load_policy(settings.policy_file)
    champion = Champion.load(Registry(settings.models_dir), d)
    if frame is None and champion is not None:
        frame = build_population(settings, d)
    with (
        open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con,
        executor_for(settings) as executor,
    ):
        ensure_limits_schema(con)  # a first night has no decisions yet
        rows = executor.run(
            con,
            LIMITS,
            d,
            policy=policy,
            champion=champion,
            run_id=run_id,
            frame=frame if champion is not None else None,
            reference=reference_for(champion, frame) if champion and frame else None,
        )
        decided = pl.from_arrow(rows)
        assert isinstance(decided, pl.DataFrame)
        decided = decided.sort("customer_id", maintain_order=True)
        store_decisions(con, d, decided)
        published = publish_partition(
            limit_updates(con, d), settings.published_dir, "limit_updates", d
        )
    return LimitsOutcome(summarize(decided, d, policy, champion), published)

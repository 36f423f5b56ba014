"""The limits step: score every customer with the champion in force, apply the limit policy,
price each limit, keep the decisions and publish ``limit_updates`` and ``pricing_summary``
(the rules are in policy.decisions and policy.pricing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from creditflow.execution import executor_for
from creditflow.models.champion import Champion
from creditflow.models.dataset import Frame
from creditflow.models.registry import Registry
from creditflow.policy.config import LimitPolicy, load_policy
from creditflow.policy.decisions import LimitsResult, evaluate_limits, limit_updates
from creditflow.policy.pricing import pricing_summary
from creditflow.publish import PublishedPartition, publish_partition
from creditflow.settings import Settings
from creditflow.steps.population import build_population
from creditflow.warehouse import open_warehouse


@dataclass(frozen=True)
class LimitsOutcome:
    result: LimitsResult
    published: PublishedPartition
    pricing: PublishedPartition


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
        _, result = evaluate_limits(con, d, policy, champion, run_id, frame, run=executor.run)
        published = publish_partition(
            limit_updates(con, d), settings.published_dir, "limit_updates", d
        )
        pricing = publish_partition(
            pricing_summary(con, d, policy, run_id), settings.published_dir, "pricing_summary", d
        )
    return LimitsOutcome(result, published, pricing)

"""The notices step: after the ledger and the limits, the night's customer notices for the
messaging system (the rules are in policy.notices and customer_notices.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow.parquet as pq

from creditflow.policy.config import LimitPolicy, load_policy
from creditflow.policy.notices import NoticesResult, notice_rows, published_notices, store_notices
from creditflow.publish import PART_FILE, PublishedPartition, partition_dir, publish_partition
from creditflow.settings import Settings
from creditflow.warehouse import open_warehouse


@dataclass(frozen=True)
class NoticesOutcome:
    result: NoticesResult
    published: PublishedPartition


def run_notices(
    settings: Settings, d: date, *, run_id: str | None = None, policy: LimitPolicy | None = None
) -> NoticesOutcome:
    """Compute the notices of ``d``, keep them (recording what a rerun added or withdrew) and
    publish ``customer_notices``. Needs the ledger and the limits of ``d``."""
    run_id = run_id or f"notices-{d.isoformat()}"
    policy = policy or load_policy(settings.policy_file)
    current = partition_dir(settings.published_dir, "customer_notices", d) / PART_FILE
    # what readers have now: a rerun records its changes against it
    published = pq.read_table(current) if current.exists() else None
    with open_warehouse(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds) as con:
        result = store_notices(con, d, notice_rows(con, d, policy, run_id), run_id, published)
        published = publish_partition(
            published_notices(con, d), settings.published_dir, "customer_notices", d
        )
    return NoticesOutcome(result, published)

"""When nights run: the nightly schedule's defaults, the business date of a scheduled run, and
which dates a backfill reruns. No Prefect import, so the CLI reads these without paying for
one."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from creditflow.contract import BUSINESS_TZ

DEFAULT_CRON = "0 2 * * *"  # 02:00: the day's deliveries have landed by 01:00 Shanghai time
DEFAULT_TIMEZONE = BUSINESS_TZ  # the schedule runs on Shanghai business days
DEFAULT_NAME = "creditflow-nightly"


def scheduled_run_date(scheduled: datetime) -> date:
    """The business date a scheduled run processes: the day before, in Asia/Shanghai."""
    return scheduled.astimezone(ZoneInfo(BUSINESS_TZ)).date() - timedelta(days=1)


class Reprocess(StrEnum):
    missing = "missing"  # dates without a successful run
    failed = "failed"  # dates whose latest run failed
    all = "all"  # every date in the range

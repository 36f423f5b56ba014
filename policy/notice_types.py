"""The kinds of customer notice the night publishes, and the clock arithmetic of sending them.

Pure and dependency-free: the policy loader checks a file's notice settings against these,
and ``policy.notices`` builds the rows.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from creditflow.contract import BUSINESS_TZ

# Reminders from the ledger, then limit changes from the night's decisions.
NOTICE_TYPES = (
    "DUE_SOON",
    "DUE_TODAY",
    "AUTO_DEBIT_FAILED",
    "OVERDUE",
    "LIMIT_NEW",
    "LIMIT_INCREASE",
    "LIMIT_DECREASE",
    "LIMIT_FREEZE",
    "LIMIT_CLOSE",
)


def clock_minutes(value: str, name: str = "time") -> int:
    """'HH:MM' (24-hour clock) as minutes after midnight; a clear error names the setting."""
    try:
        hours, minutes = value.split(":")
        h, m = int(hours), int(minutes)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a time of day HH:MM") from None
    if not (0 <= h < 24 and 0 <= m < 60) or len(minutes) != 2:
        raise ValueError(f"{name} {value!r} is not a time of day HH:MM")
    return h * 60 + m


def in_quiet_hours(minute: int, quiet_start: int, quiet_end: int) -> bool:
    """Whether a minute of the day falls in [quiet_start, quiet_end), across midnight or not."""
    if quiet_start == quiet_end:
        return False  # no quiet hours
    if quiet_start < quiet_end:
        return quiet_start <= minute < quiet_end
    return minute >= quiet_start or minute < quiet_end


def send_after(day: date, send_at: str, quiet_start: str, quiet_end: str) -> datetime:
    """When a notice meant for ``send_at`` on ``day`` may go out: that moment, or the end of
    the quiet hours it falls in (the next morning when it falls in the evening)."""
    minute = clock_minutes(send_at)
    start, end = clock_minutes(quiet_start), clock_minutes(quiet_end)
    if in_quiet_hours(minute, start, end):
        if start > end and minute >= start:
            day += timedelta(days=1)  # an evening time moves to the next morning
        minute = end
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=ZoneInfo(BUSINESS_TZ))

"""Calendar effects on a Chinese super-app book: weekends, salary days, Spring Festival."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

# Lunar New Year's Day (first day of Spring Festival), from the official holiday calendars.
SPRING_FESTIVAL = {
    2018: date(2018, 2, 16),
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}

# Salary days seen in Chinese payrolls; each salaried customer gets one of them.
PAYDAYS = (5, 10, 15, 20, 25, 31)  # 31 means the last day of the month


@dataclass(frozen=True)
class DayProfile:
    """Multipliers that a business date applies to behaviour, spending and repayment."""

    day: date
    weekend: bool
    festival_run_up: bool  # two weeks of shopping and borrowing before the festival
    festival: bool  # the seven-day holiday: red packets, travel, late repayments

    @property
    def activity(self) -> float:
        return (1.10 if self.weekend else 1.0) * (1.25 if self.festival else 1.0)

    @property
    def spending(self) -> float:
        return (1.15 if self.weekend else 1.0) * (1.6 if self.festival_run_up else 1.0)

    @property
    def red_packets(self) -> float:
        return 10.0 if self.festival else (2.0 if self.festival_run_up else 1.0)

    @property
    def borrowing(self) -> float:
        return 1.6 if self.festival_run_up else (0.7 if self.festival else 1.0)

    @property
    def repayment_risk_shift(self) -> float:
        """Added to a customer's risk on the day: repayments slip over the holiday."""
        return 0.5 if self.festival else 0.0


def spring_festival(year: int) -> date | None:
    return SPRING_FESTIVAL.get(year)


def day_profile(day: date) -> DayProfile:
    run_up = festival = False
    for year in (day.year, day.year + 1):
        sf = spring_festival(year)
        if sf is None:
            continue
        if sf - timedelta(days=14) <= day < sf:
            run_up = True
        if sf - timedelta(days=1) <= day <= sf + timedelta(days=6):
            festival = True
    return DayProfile(
        day=day, weekend=day.weekday() >= 5, festival_run_up=run_up, festival=festival
    )


def is_payday(day: date, payday: int) -> bool:
    """Whether ``day`` is the salary day ``payday`` (31 = the month's last day)."""
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(payday, last)


def add_months(day: date, months: int) -> date:
    """Same day-of-month ``months`` later, clipped to the month's end (how schedules fall due)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))

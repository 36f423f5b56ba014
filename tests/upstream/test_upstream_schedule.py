"""Repayment schedules are correct amortisations, to the fen."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from creditflow.upstream.book_state import _schedule

principals = st.integers(min_value=100_00, max_value=200_000_00)
rates = st.integers(min_value=1, max_value=240_000)  # millionths, up to 24% a year
terms = st.integers(min_value=1, max_value=36)


@settings(max_examples=200, deadline=None)
@given(principals, rates, terms)
def test_equal_instalments_sum_to_principal_and_are_level(
    principal: int, rate: int, term: int
) -> None:
    """Principal lines sum to the loan; every payment but the last is the same amount."""
    prin, intr = _schedule(principal, rate, term, bullet=False)
    assert len(prin) == len(intr) == term
    assert sum(prin) == principal
    assert min(prin) >= 0 and min(intr) >= 0
    payments = [p + i for p, i in zip(prin, intr, strict=True)]
    assert len(set(payments[:-1])) <= 1


@settings(max_examples=100, deadline=None)
@given(principals, rates, terms)
def test_bullet_pays_interest_monthly_and_principal_last(
    principal: int, rate: int, term: int
) -> None:
    """A bullet loan's principal falls due whole on its last instalment."""
    prin, intr = _schedule(principal, rate, term, bullet=True)
    assert prin == [0] * (term - 1) + [principal]
    assert len(set(intr)) == 1 and intr[0] >= 0


def test_known_annuity() -> None:
    """10,000.00 at 12% over 12 months: 888.49 a month, the textbook figure."""
    prin, intr = _schedule(1_000_000, 120_000, 12, bullet=False)
    assert prin[0] + intr[0] == 88_849
    assert intr[0] == 10_000  # 1% of the opening balance
    assert sum(prin) == 1_000_000

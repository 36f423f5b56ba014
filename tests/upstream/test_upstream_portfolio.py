"""Across most of a year the synthetic book behaves like a real micro-lending portfolio.

Figures come from the oracle ledger (tests/oracle.py), which reads only the delivered files.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.oracle import bucket_sql, build_daily_dpd, load_landing

YEAR = GeneratorConfig(customers=3000, days=300, start=date(2025, 9, 1), seed=5)
END = YEAR.start + timedelta(days=YEAR.days - 1)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    landing: Path = tmp_path_factory.mktemp("year") / "landing"
    generate(YEAR, landing)
    con = load_landing(landing)
    build_daily_dpd(con, END.isoformat())
    con.execute(
        """create table customer_day as
           select customer_id, d, max(dpd) dpd, sum(outstanding_principal) balance
           from daily group by all"""
    )
    return con


def snapshots() -> list[str]:
    """Month-spaced observation dates whose 90-day window has closed before the last delivery."""
    first = YEAR.start + timedelta(days=60)
    return [
        (first + timedelta(days=30 * k)).isoformat()
        for k in range(10)
        if first + timedelta(days=30 * k + 90) <= END
    ]


@pytest.mark.slow
def test_bad_rate_is_in_the_plausible_band(book: duckdb.DuckDBPyConnection) -> None:
    """Of borrowers below 30 dpd at t, 3-10% reach dpd >= 30 on one of the 90 days after t."""
    rows = book.execute(
        """
        with obs as (
            select customer_id, d as t from customer_day
            where d in (select unnest($snaps::date[])) and balance > 0 and dpd < 30),
        outcome as (
            select o.customer_id, o.t, max(c.dpd) >= 30 as bad
            from obs o join customer_day c on c.customer_id = o.customer_id
                and c.d > o.t and c.d <= o.t + 90
            group by all)
        select count(*) n, avg(bad::int) bad_rate from obs left join outcome using (customer_id, t)
        """,
        {"snaps": snapshots()},
    ).fetchone()
    assert rows is not None
    n, bad_rate = rows
    assert n > 2000
    assert 0.03 <= bad_rate <= 0.10, bad_rate


@pytest.mark.slow
def test_npl_balance_ratio_stays_in_single_digits(book: duckdb.DuckDBPyConnection) -> None:
    """NPL (M4 and above) balance over all outstanding principal: positive by year end, under 10%."""
    ratios = book.execute(
        """select d, coalesce(sum(outstanding_principal) filter (where dpd > 90), 0) / sum(outstanding_principal)
           from daily where d in (select unnest($snaps::date[])) group by d order by d""",
        {"snaps": [*snapshots(), END.isoformat()]},
    ).fetchall()
    assert all(r[1] < 0.10 for r in ratios), ratios
    assert ratios[-1][1] > 0.005, ratios


@pytest.mark.slow
def test_loans_roll_through_every_bucket_and_also_cure(book: duckdb.DuckDBPyConnection) -> None:
    """Some loans reach each bucket up to write-off; some late loans come back to current."""
    buckets = {
        r[0] for r in book.execute(f"select distinct {bucket_sql('dpd')} from daily").fetchall()
    }
    assert buckets == {"M0", "M1", "M2", "M3", "M4", "M5", "M6+"}
    cured = book.execute(
        """select count(distinct loan_id) from (
               select loan_id, dpd, lag(dpd) over (partition by loan_id order by d) prev from daily)
           where prev > 0 and dpd = 0"""
    ).fetchone()
    assert cured is not None and cured[0] > 50


@pytest.mark.slow
def test_prepayments_partial_payments_and_reversals_happen(book: duckdb.DuckDBPyConnection) -> None:
    """Loans paid off before their last due date, part-paid instalments, and bounced auto-debits."""
    prepaid = book.execute(
        """select count(*) from (
               select loan_id, min(d) filter (where outstanding_principal = 0) paid_off
               from daily group by all) p
           join (select loan_id, max(due_date) last_due from installments group by all) s using (loan_id)
           where paid_off < last_due - 20"""
    ).fetchone()
    reversals = book.execute(
        "select count(*) from transactions where txn_type = 'REVERSAL'"
    ).fetchone()
    assert prepaid is not None and prepaid[0] > 20
    assert reversals is not None and reversals[0] > 20


@pytest.mark.slow
def test_borrowing_is_plausible(book: duckdb.DuckDBPyConnection) -> None:
    """A minority of customers borrow, and borrowers come back for more than one loan."""
    row = book.execute(
        """select count(distinct l.customer_id) / (select count(distinct customer_id) from customers),
                  count(*) / count(distinct l.customer_id)
           from loans l"""
    ).fetchone()
    assert row is not None
    share, per_borrower = row
    assert 0.15 < share < 0.6
    assert 1.2 < per_borrower < 4.0

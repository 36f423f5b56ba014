"""Random small books: the incremental ledger equals the from-scratch oracle on every processed
date, daily or sparse, and keeps the contract's invariants (contract section 2).

A ledger step costs tens of milliseconds, so a run processes a few dates, not every day of a
book: the "daily" run starts from nothing a few days before the book's last date and then steps
one day at a time; the sparse run steps over random gaps. Both are held to the oracle, which
recomputes every day of every loan from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import accumulate, pairwise

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from creditflow.contract import REPAYMENT_METHODS
from creditflow.transforms.ledger import GRACE_DAYS, ledger_step
from creditflow.transforms.reports import report
from creditflow.warehouse import ensure_schema, use_business_time_zone
from tests.support.oracle import bucket_sql, build_daily_dpd

D0 = date(2026, 1, 1)
HORIZON = 110  # the last business date a book reaches, in days after D0
# contract section 2: the bucket ladder by dpd (None: no upper end)
LADDER: tuple[tuple[str, int, int | None], ...] = (
    ("M0", 0, 0),
    ("M1", 1, 30),
    ("M2", 31, 60),
    ("M3", 61, 90),
    ("M4", 91, 120),
    ("M5", 121, 180),
    ("M6+", 181, None),
)
EDGES = (0, 1, 30, 31, 60, 61, 90, 91)  # days after a due date: dpd on either side of an edge
# Days a repaid loan stays in loan_daily. Short ones (0, 3, 10) would archive and revive loans
# within these small books, but a loan archived twice comes back twice today (see the xfail
# examples at the end); add them once that is fixed.
GRACES = (GRACE_DAYS,)
# small enough for the file to run in well under a minute on a busy 2-core machine
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True, database=None)
MANY = settings(PROPERTY, max_examples=30)  # the invariants need one cheap run per example

Position = tuple[int, str, Decimal]  # dpd, bucket, outstanding principal
Positions = dict[int, dict[str, Position]]  # day -> loan_id -> position


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def cents(n: int) -> Decimal:
    """An amount of money, two decimals."""
    return Decimal(n).scaleb(-2)


@dataclass(frozen=True)
class Loan:
    """A loan and its schedule, both delivered on the origination day."""

    loan_id: str
    customer_id: str
    on: int
    method: str
    lines: tuple[tuple[int, Decimal, Decimal], ...]  # (due day, principal_due, interest_due)


@dataclass(frozen=True)
class Txn:
    """A REPAYMENT or REVERSAL delivered on day ``on``, its timestamp ``lag`` days earlier."""

    txn_id: str
    customer_id: str
    loan_id: str  # for a REVERSAL: the loan of the repayment it undoes (delivered as null)
    on: int
    lag: int
    txn_type: str
    amount: Decimal
    status: str
    reverses: str | None = None


@dataclass(frozen=True)
class Book:
    """What is delivered, the last business date to process, and the ledger's grace period."""

    loans: tuple[Loan, ...]
    txns: tuple[Txn, ...]
    end: int
    grace_days: int = GRACE_DAYS


@st.composite
def schedules(draw: st.DrawFn, loan_id: str, customer_id: str, end: int) -> Loan:
    """Originated before ``end``; 1-4 instalments due within ~90 days of origination, equal
    or bullet principal."""
    on = draw(st.integers(0, min(20, end - 1)))
    method = draw(st.sampled_from(REPAYMENT_METHODS))
    n = draw(st.integers(1, 4))
    first = draw(st.integers(1, 31))
    gaps = draw(st.lists(st.integers(1, 20), min_size=n - 1, max_size=n - 1))
    dues = list(accumulate([on + first, *gaps]))
    principal = draw(st.integers(n * 100, 500_000))
    if method == "BULLET":
        parts = [0] * (n - 1) + [principal]
    else:
        parts = [principal // n] * (n - 1) + [principal - (n - 1) * (principal // n)]
    interest = draw(st.lists(st.integers(0, 3_000), min_size=n, max_size=n))
    lines = tuple(zip(dues, map(cents, parts), map(cents, interest), strict=True))
    return Loan(loan_id, customer_id, on, method, lines)


@st.composite
def books(draw: st.DrawFn) -> Book:
    """1-4 customers, 1-5 loans; repayments (failed, partial, exact, over), some reversed,
    some delivered up to 3 days late; every delivery by the book's last date."""
    end = draw(st.integers(21, HORIZON))
    customers = [f"C{i}" for i in range(1, draw(st.integers(1, 4)) + 1)]
    loans = [
        draw(schedules(f"L{i}", draw(st.sampled_from(customers)), end))
        for i in range(1, draw(st.integers(1, 5)) + 1)
    ]
    txns: list[Txn] = []
    for loan in loans:
        owed = [int((p + i) * 100) for _, p, i in loan.lines]
        total = sum(owed)
        amounts = st.one_of(
            st.sampled_from(owed + list(accumulate(owed))),  # an instalment, or up to one
            st.integers(1, total),  # partial
            st.integers(total + 1, 2 * total),  # over-payment: a credit
        )
        dues = [due for due, _, _ in loan.lines if due <= end]
        days = st.integers(loan.on, end) | (st.sampled_from(dues) if dues else st.nothing())
        for _ in range(draw(st.integers(0, 5))):
            on = draw(days)
            paid = Txn(
                f"T{len(txns) + 1:04d}",
                loan.customer_id,
                loan.loan_id,
                on,
                draw(st.integers(0, min(3, on - loan.on))),
                "REPAYMENT",
                cents(draw(amounts)),
                draw(st.sampled_from(["SUCCESS", "SUCCESS", "SUCCESS", "FAILED"])),
            )
            txns.append(paid)
            if paid.status == "SUCCESS" and draw(st.booleans()):
                back = draw(st.integers(on, min(on + 40, end)))
                txns.append(
                    Txn(
                        f"T{len(txns) + 1:04d}",
                        loan.customer_id,
                        loan.loan_id,
                        back,
                        draw(st.integers(0, min(3, back - on))),
                        "REVERSAL",
                        paid.amount,
                        draw(st.sampled_from(["SUCCESS", "SUCCESS", "FAILED"])),
                        paid.txn_id,
                    )
                )
    return Book(tuple(loans), tuple(txns), end, draw(st.sampled_from(GRACES)))


def warehouse(book: Book) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse holding the book's deliveries (ingest is tested on its own)."""
    con = duckdb.connect()
    use_business_time_zone(con)
    con.execute("set threads = 1")  # tiny tables: threads only add overhead
    ensure_schema(con)
    con.executemany(
        """insert into loans (loan_id, customer_id, originated_at, product, principal,
               term_months, annual_rate, repayment_method, dt, load_id)
           values ($1, $2, $3::TIMESTAMPTZ, 'CASH_LOAN', $4, $5, 0.12, $6, $7, 'test')""",
        [
            (
                loan.loan_id,
                loan.customer_id,
                f"{day(loan.on)}T10:00:00+08:00",
                sum(p for _, p, _ in loan.lines),
                len(loan.lines),
                loan.method,
                day(loan.on),
            )
            for loan in book.loans
        ],
    )
    con.executemany(
        """insert into installments (loan_id, installment_no, due_date, principal_due,
               interest_due, dt, load_id)
           values ($1, $2, $3, $4, $5, $6, 'test')""",
        [
            (loan.loan_id, k, day(due), p, i, day(loan.on))
            for loan in book.loans
            for k, (due, p, i) in enumerate(loan.lines, start=1)
        ],
    )
    if book.txns:
        con.executemany(
            """insert into transactions (txn_id, customer_id, loan_id, txn_ts, txn_type, amount,
                   currency, channel, merchant_category, status, reverses_txn_id, is_late, dt,
                   load_id)
               values ($1, $2, $3, $4::TIMESTAMPTZ, $5, $6, 'CNY', 'AUTO_DEBIT', null, $7, $8,
                       $9, $10, 'test')""",
            [
                (
                    t.txn_id,
                    t.customer_id,
                    t.loan_id if t.txn_type == "REPAYMENT" else None,
                    f"{day(t.on - t.lag)}T12:00:00+08:00",
                    t.txn_type,
                    t.amount,
                    t.status,
                    t.reverses,
                    t.lag > 0,
                    day(t.on),
                )
                for t in book.txns
            ],
        )
    return con


def run(book: Book, days: list[int]) -> duckdb.DuckDBPyConnection:
    """The book's warehouse after a ledger step on each of ``days``, in order."""
    con = warehouse(book)
    for n in days:
        ledger_step(con, day(n), run_id="test", grace_days=book.grace_days)
    return con


def ledger_positions(con: duckdb.DuckDBPyConnection) -> Positions:
    """Every row the ledger wrote to ``loan_daily``, by day and loan (no loan twice a day)."""
    out: Positions = {}
    for d, loan_id, dpd, bucket, outstanding in con.execute(
        "select dt, loan_id, dpd, bucket, outstanding_principal from loan_daily order by all"
    ).fetchall():
        rows = out.setdefault((d - D0).days, {})
        assert loan_id not in rows, f"{loan_id} twice on {d}"
        rows[loan_id] = (dpd, bucket, outstanding)
    return out


def oracle_positions(book: Book) -> Positions:
    """The from-scratch oracle's position of every loan on every day up to the book's end."""
    con = warehouse(book)
    build_daily_dpd(con, day(book.end).isoformat())
    out: Positions = {}
    for d, loan_id, dpd, bucket, outstanding in con.execute(
        f"select d, loan_id, dpd, {bucket_sql('dpd')}, outstanding_principal from daily"
    ).fetchall():
        out.setdefault((d - D0).days, {})[loan_id] = (dpd, bucket, outstanding)
    return out


def assert_matches_oracle(ledger: Positions, oracle: Positions, days: list[int]) -> None:
    """On each processed day: every loan with a balance is in the ledger, and every ledger row
    (repaid loans in their grace period too) has the oracle's dpd, bucket and balance."""
    for n in days:
        rows = ledger.get(n, {})
        expected = {
            loan_id: position
            for loan_id, position in oracle.get(n, {}).items()
            if position[2] > 0 or loan_id in rows
        }
        assert rows == expected, f"day {n} ({day(n)})"


def earlier_dates(book: Book, most: int) -> st.SearchStrategy[list[int]]:
    """Up to ``most`` distinct dates before the book's end, often where a loan's first
    instalment, if unpaid, puts its dpd on either side of a bucket's edge."""
    edges = {loan.lines[0][0] + k for loan in book.loans for k in EDGES}
    dates = st.integers(0, book.end - 1)
    if inside := sorted(n for n in edges if n < book.end):
        dates = dates | st.sampled_from(inside)
    return st.lists(dates, max_size=most, unique=True).map(sorted)


FINAL = """select loan_id, customer_id, product, originated_on, months_on_book, dpd, bucket,
               outstanding_principal, overdue_amount, paid_total, credit, total_due
           from loan_daily where dt = $d and outstanding_principal > 0 order by loan_id"""


@PROPERTY
@given(book=books(), data=st.data())
def test_daily_and_sparse_runs_equal_the_oracle_and_each_other(
    book: Book, data: st.DataObject
) -> None:
    """A daily run and a sparse run both match the oracle on each processed date and reach
    the same final state."""
    start = book.end - data.draw(st.integers(0, 4), label="daily steps after the first")
    daily_days = list(range(max(start, 0), book.end + 1))
    sparse_days = [*data.draw(earlier_dates(book, 5), label="sparse dates"), book.end]
    oracle = oracle_positions(book)
    daily = run(book, daily_days)
    sparse = run(book, sparse_days)
    assert_matches_oracle(ledger_positions(daily), oracle, daily_days)
    assert_matches_oracle(ledger_positions(sparse), oracle, sparse_days)
    final = {"d": day(book.end)}
    assert sparse.execute(FINAL, final).fetchall() == daily.execute(FINAL, final).fetchall()


def rung(dpd: int) -> list[str]:
    """The ladder's buckets whose dpd range holds ``dpd``."""
    return [name for name, low, high in LADDER if low <= dpd and (high is None or dpd <= high)]


def processed(most: int) -> st.SearchStrategy[tuple[Book, list[int]]]:
    """A book and the dates to process: up to ``most`` earlier dates, then its last."""
    return books().flatmap(
        lambda book: earlier_dates(book, most).map(lambda days: (book, [*days, book.end]))
    )


# one unpaid instalment due on day 1, processed on either side of every edge of the ladder
UNPAID = Book((Loan("L1", "C1", 0, "BULLET", ((1, cents(100_000), cents(1_000)),)),), (), 200)
EVERY_EDGE = [0, 1, 2, 31, 32, 61, 62, 91, 92, 121, 122, 181, 182, 200]


@MANY
@given(case=processed(7))
@example(case=(UNPAID, EVERY_EDGE))
def test_buckets_partition_the_book_and_dpd_moves_with_the_calendar(
    case: tuple[Book, list[int]],
) -> None:
    """On every processed date each loan with a balance is published once, in the one bucket
    of the ladder that holds its dpd; dpd is never negative; and between processed dates it
    grows by at most the days elapsed unless a reversal arrives (exactly by them while nothing
    arrives)."""
    book, days = case
    con = run(book, days)
    ledger = ledger_positions(con)
    originated = {loan.loan_id: loan.on for loan in book.loans}
    for n in days:
        active = {k: v for k, v in ledger.get(n, {}).items() if v[2] > 0}
        published = report(con, "loan_delinquency", day(n), "test").to_arrow_table().to_pylist()
        assert sorted(r["loan_id"] for r in published) == sorted(active), f"day {n}"
        for r in published:
            assert rung(r["dpd"]) == [r["bucket"]], f"day {n}: {r}"
        for loan_id, (dpd, bucket, _) in ledger.get(n, {}).items():
            # due dates fall after origination: dpd stays below the days on book
            assert dpd == 0 or 0 < dpd < n - originated[loan_id], f"{loan_id}: {dpd} on day {n}"
            assert rung(dpd) == [bucket], f"{loan_id} on day {n}: dpd {dpd} in {bucket}"

    for before, after in pairwise(days):
        money = {t.loan_id for t in book.txns if t.status == "SUCCESS" and before < t.on <= after}
        reversed_ = {
            t.loan_id
            for t in book.txns
            if t.txn_type == "REVERSAL" and t.status == "SUCCESS" and before < t.on <= after
        }
        elapsed = after - before
        for loan_id, (dpd, _, _) in ledger.get(after, {}).items():
            if loan_id not in ledger.get(before, {}) or loan_id in reversed_:
                continue
            was = ledger[before][loan_id][0]
            assert dpd <= was + elapsed, f"{loan_id}: dpd {was} on day {before}, {dpd} on {after}"
            if was > 0 and loan_id not in money:
                assert dpd == was + elapsed, f"{loan_id}: nothing paid from day {before} to {after}"


# --- minimal examples of discrepancies, expected to fail until the ledger is fixed -----------


@pytest.mark.xfail(
    strict=True,
    reason="ledger_state.sql `revived` takes every loan_archive row of the loan, not its latest",
)
def test_a_loan_archived_twice_comes_back_once() -> None:
    """Repaid, archived, over-paid (revived and archived again), then the first repayment
    bounces: the loan is back once, with the over-payment left on it."""
    book = Book(
        loans=(Loan("L1", "C1", 0, "EQUAL_INSTALLMENT", ((5, cents(100), cents(0)),)),),
        txns=(
            Txn("T1", "C1", "L1", 0, 0, "REPAYMENT", cents(100), "SUCCESS"),
            Txn("T2", "C1", "L1", 1, 0, "REPAYMENT", cents(50), "SUCCESS"),
            Txn("T3", "C1", "L1", 2, 0, "REVERSAL", cents(100), "SUCCESS", "T1"),
        ),
        end=2,
        # the nightly 35 days do the same: repaid on day 1, over-paid on day 40, bounced on 41
        grace_days=0,
    )
    con = run(book, [0, 1, 2])
    rows = con.execute(
        "select loan_id, outstanding_principal from loan_daily where dt = $d", {"d": day(2)}
    )
    assert rows.fetchall() == [("L1", cents(50))]


@pytest.mark.xfail(
    strict=True,
    reason="a loan whose schedule arrives after a repayment enters with only the step's window paid",
)
def test_a_repayment_delivered_before_the_schedule_counts_on_a_daily_run() -> None:
    """The schedule is delivered two days after its loan (contract: the loan of an instalment is
    delivered on that date or earlier) and a repayment in between: daily steps count it too."""
    book = Book(
        loans=(Loan("L1", "C1", 0, "EQUAL_INSTALLMENT", ((10, cents(10_000), cents(0)),)),),
        txns=(Txn("T1", "C1", "L1", 1, 0, "REPAYMENT", cents(4_000), "SUCCESS"),),
        end=2,
    )
    con = warehouse(book)
    con.execute("update installments set dt = $d", {"d": day(2)})
    for n in (0, 1, 2):
        ledger_step(con, day(n), run_id="test")
    rows = con.execute(
        "select loan_id, outstanding_principal from loan_daily where dt = $d", {"d": day(2)}
    )
    assert rows.fetchall() == [("L1", cents(6_000))]  # what one step over days 0-2 gives

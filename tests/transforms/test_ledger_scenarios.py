"""Small hand-written ledgers: the dpd on each date follows contract section 2 exactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import pytest

from creditflow.transforms.ledger import ledger_step
from creditflow.warehouse import ensure_schema, use_business_time_zone

D0 = date(2026, 1, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


@dataclass
class Book:
    """Deliveries by day: loans with their schedule, and transactions."""

    loans: list[tuple] = field(default_factory=list)
    lines: list[tuple] = field(default_factory=list)
    txns: list[tuple] = field(default_factory=list)
    _n: int = 0

    def loan(
        self,
        loan_id: str,
        customer: str,
        on: int,
        lines: list[tuple[int, str, str]],
        method: str = "EQUAL_INSTALLMENT",
    ) -> None:
        """Originate on day ``on``; lines are (due day, principal_due, interest_due)."""
        principal = sum(float(p) for _, p, _ in lines)
        self.loans.append(
            (
                loan_id,
                customer,
                f"{day(on)}T10:00:00+08:00",
                "CASH_LOAN",
                principal,
                len(lines),
                0.12,
                method,
                day(on),
            )
        )
        for k, (due, p, i) in enumerate(lines, start=1):
            self.lines.append((loan_id, k, day(due), p, i, day(on)))

    def pay(
        self, loan_id: str, customer: str, on: int, amount: str, status: str = "SUCCESS"
    ) -> str:
        self._n += 1
        txn = f"T{self._n:05d}"
        self.txns.append(
            (
                txn,
                customer,
                loan_id,
                f"{day(on)}T12:00:00+08:00",
                "REPAYMENT",
                amount,
                "AUTO_DEBIT",
                status,
                None,
                day(on),
            )
        )
        return txn

    def reverse(self, txn: str, customer: str, on: int, amount: str) -> None:
        self._n += 1
        self.txns.append(
            (
                f"T{self._n:05d}",
                customer,
                None,
                f"{day(on)}T03:00:00+08:00",
                "REVERSAL",
                amount,
                "AUTO_DEBIT",
                "SUCCESS",
                txn,
                day(on),
            )
        )

    def run(self, days: int) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        use_business_time_zone(con)
        ensure_schema(con)
        for row in self.loans:
            con.execute(
                "insert into loans values ($1, $2, $3::TIMESTAMPTZ, $4, $5, $6, $7, $8, $9, 'test')",
                list(row),
            )
        for row in self.lines:
            con.execute(
                "insert into installments values ($1, $2, $3, $4, $5, $6, 'test')", list(row)
            )
        for t in self.txns:
            con.execute(
                "insert into transactions values ($1, $2, $3, $4::TIMESTAMPTZ, $5, $6, 'CNY', $7, null, $8, $9, false, $10, 'test')",
                list(t),
            )
        for n in range(days):
            ledger_step(con, day(n), run_id="test")
        return con


def dpd_by_day(con: duckdb.DuckDBPyConnection, loan_id: str) -> dict[int, int]:
    rows = con.execute(
        "select dt, dpd from loan_daily where loan_id = $l and outstanding_principal > 0 order by dt",
        {"l": loan_id},
    ).fetchall()
    return {(d - D0).days: dpd for d, dpd in rows}


def state(con: duckdb.DuckDBPyConnection, loan_id: str, n: int, column: str) -> object:
    row = con.execute(
        f"select {column} from loan_daily where loan_id = $l and dt = $d",
        {"l": loan_id, "d": day(n)},
    ).fetchone()
    return None if row is None else row[0]


TWO_MONTHS = [(31, "500.00", "10.00"), (59, "500.00", "5.00")]  # due Feb 1 and Mar 1


def test_on_time_payments_never_go_past_due() -> None:
    """Each instalment paid on its due date: dpd 0 every day, and the loan closes."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.pay("L1", "C1", 31, "510.00")
    b.pay("L1", "C1", 59, "505.00")
    con = b.run(70)
    assert set(dpd_by_day(con, "L1").values()) == {0}
    assert state(con, "L1", 59, "outstanding_principal") == 0
    assert state(con, "L1", 60, "closed_on") == day(59)


def test_late_then_cured() -> None:
    """Due on day 31 and paid on day 46: dpd 1 on day 32 rising to 14 on day 45, then 0."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.pay("L1", "C1", 46, "510.00")
    dpd = dpd_by_day(b.run(58), "L1")
    assert [dpd[n] for n in (30, 31, 32, 45, 46, 57)] == [0, 0, 1, 14, 0, 0]


def test_partial_payment_leaves_the_instalment_overdue() -> None:
    """Half the instalment paid: still overdue, dpd keeps counting from the due date; overdue shrinks."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.pay("L1", "C1", 35, "255.00")
    con = b.run(50)
    assert dpd_by_day(con, "L1")[40] == 9
    assert state(con, "L1", 34, "overdue_amount") == pytest.approx(510)
    assert state(con, "L1", 40, "overdue_amount") == pytest.approx(255)
    # interest first: the 255.00 covered the 10.00 interest and 245.00 of principal
    assert state(con, "L1", 40, "outstanding_principal") == pytest.approx(755)


def test_prepayment_lowers_principal_on_the_day_it_is_paid() -> None:
    """Paying early goes to the next instalments in order, interest first; a full payoff closes the loan."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.pay("L1", "C1", 10, "300.00")  # 10.00 interest, 290.00 principal of instalment 1
    b.pay("L1", "C1", 20, "715.00")  # the rest of the schedule
    con = b.run(30)
    assert state(con, "L1", 9, "outstanding_principal") == 1000
    assert state(con, "L1", 10, "outstanding_principal") == 710
    assert state(con, "L1", 20, "outstanding_principal") == 0
    assert set(dpd_by_day(con, "L1").values()) == {0}


def test_reversal_after_the_due_date_reopens_the_instalment_from_its_own_date() -> None:
    """An auto-debit paid on the due date and bounced 3 days later: dpd 0, then 3 on the reversal date."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    txn = b.pay("L1", "C1", 31, "510.00")
    b.reverse(txn, "C1", 34, "510.00")
    dpd = dpd_by_day(b.run(40), "L1")
    assert [dpd[n] for n in (31, 32, 33, 34, 35)] == [0, 0, 0, 3, 4]


def test_a_failed_auto_debit_moves_no_money() -> None:
    """A FAILED repayment leaves the instalment unpaid."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.pay("L1", "C1", 31, "510.00", status="FAILED")
    assert dpd_by_day(b.run(36), "L1")[35] == 4


def test_several_loans_of_one_customer() -> None:
    """Each loan has its own dpd and balance (the limit inputs take the worst dpd and the
    summed balance per customer)."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.loan("L2", "C1", 5, [(36, "300.00", "3.00")])
    b.pay("L1", "C1", 31, "510.00")
    con = b.run(45)
    assert dpd_by_day(con, "L1")[44] == 0
    assert dpd_by_day(con, "L2")[44] == 8
    # outstanding: L1's second instalment (500.00) and all of L2 (300.00)
    result = con.execute(
        "select loan_id, dpd, outstanding_principal from loan_daily where dt = $d order by 1",
        {"d": day(44)},
    ).fetchall()
    assert result == [("L1", 0, pytest.approx(500)), ("L2", 8, pytest.approx(300))]


def test_bullet_loan_is_due_whole_at_maturity() -> None:
    """A bullet loan pays interest monthly and principal at the end: unpaid principal counts from maturity."""
    b = Book()
    b.loan("L1", "C1", 0, [(31, "0.00", "10.00"), (59, "1000.00", "10.00")], method="BULLET")
    b.pay("L1", "C1", 31, "10.00")
    con = b.run(70)
    dpd = dpd_by_day(con, "L1")
    assert dpd[58] == 0 and dpd[59] == 0 and dpd[60] == 1 and dpd[69] == 10
    assert state(con, "L1", 69, "overdue_amount") == pytest.approx(1010)


def test_overpayment_stays_as_credit_and_leaves_no_balance() -> None:
    """Paying beyond the whole schedule leaves a credit and nothing outstanding."""
    b = Book()
    b.loan("L1", "C1", 0, TWO_MONTHS)
    b.pay("L1", "C1", 10, "1100.00")
    con = b.run(15)
    assert state(con, "L1", 12, "credit") == pytest.approx(85)
    assert state(con, "L1", 12, "outstanding_principal") == 0


def test_buckets_follow_the_contract() -> None:
    """M1 is 1-30, M2 31-60 ... M6+ over 180 days past due."""
    b = Book()
    b.loan("L1", "C1", 0, [(1, "100.00", "1.00")])
    con = b.run(200)
    rows = dict(con.execute("select dpd, bucket from loan_daily where loan_id = 'L1'").fetchall())
    expected = {
        0: "M0",
        1: "M1",
        30: "M1",
        31: "M2",
        60: "M2",
        61: "M3",
        90: "M3",
        91: "M4",
        120: "M4",
        121: "M5",
        180: "M5",
        181: "M6+",
    }
    assert {k: rows[k] for k in expected} == expected


def test_a_repaid_loan_leaves_the_state_and_a_late_reversal_brings_it_back() -> None:
    """After the grace period the repaid loan is archived; a reversal later revives it overdue."""
    b = Book()
    b.loan("L1", "C1", 0, [(10, "100.00", "1.00")])
    txn = b.pay("L1", "C1", 10, "101.00")
    b.reverse(txn, "C1", 60, "101.00")
    con = b.run(62)
    assert state(con, "L1", 50, "dpd") is None  # archived after 35 days repaid
    assert con.execute("select count(*) from loan_archive where loan_id = 'L1'").fetchone() == (1,)
    assert state(con, "L1", 60, "dpd") == 50 and state(con, "L1", 61, "dpd") == 51

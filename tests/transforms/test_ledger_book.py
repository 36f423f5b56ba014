"""The ledger over months of a synthetic book: equal to the from-scratch oracle, reproducible,
and its reports keep their invariants."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from creditflow.transforms.ledger import ledger_step
from creditflow.transforms.reports import REPORTS, report
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.oracle import build_daily_dpd, load_as_warehouse, run_ledger

BOOK = GeneratorConfig(customers=1500, days=150, start=date(2025, 9, 1), seed=4)
DAYS = [BOOK.start + timedelta(days=i) for i in range(BOOK.days)]
END = DAYS[-1]


def table(con: duckdb.DuckDBPyConnection, name: str, d: date) -> pa.Table:
    """A report's rows, fetched."""
    return report(con, name, d, "r").to_arrow_table()


def query(sql: str, params: dict | None = None, **tables: pa.Table) -> list[tuple]:
    """Run SQL over fetched report tables, registered under the given names."""
    con = duckdb.connect()
    for name, t in tables.items():
        con.register(name, t)
    return con.execute(sql, params or {}).fetchall()


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(BOOK, tmp_path_factory.mktemp("ledger") / "landing").landing


@pytest.fixture(scope="module")
def book(landing: Path) -> duckdb.DuckDBPyConnection:
    con = load_as_warehouse(landing)
    run_ledger(con, BOOK.start, END)
    build_daily_dpd(con, END.isoformat())
    return con


def test_incremental_ledger_equals_the_from_scratch_oracle_every_day(
    book: duckdb.DuckDBPyConnection,
) -> None:
    """Same loans with a balance, same dpd, same outstanding principal, on each of 150 days."""
    row = book.execute(
        """
        select count(*),
               count(*) filter (where o.loan_id is null or l.loan_id is null),
               count(*) filter (where o.dpd <> l.dpd),
               count(*) filter (where o.outstanding_principal <> l.outstanding_principal)
        from (select * from daily where outstanding_principal > 0) o
        full join (select * from loan_daily where outstanding_principal > 0) l
            on o.loan_id = l.loan_id and o.d = l.dt
        """
    ).fetchall()[0]
    assert row is not None
    total, membership, dpd, balance = row
    assert total > 30_000
    assert (membership, dpd, balance) == (0, 0, 0)


def test_one_step_from_nothing_equals_the_incremental_state(
    landing: Path, book: duckdb.DuckDBPyConnection
) -> None:
    """Recomputing from scratch (all history in one step) gives the state the daily steps reached."""
    fresh = load_as_warehouse(landing)
    ledger_step(fresh, END, run_id="daily")
    cols = "loan_id, dpd, bucket, outstanding_principal, overdue_amount, paid_total, credit, months_on_book"
    daily = book.execute(
        f"select {cols} from loan_daily where dt = $d and outstanding_principal > 0 order by loan_id",
        {"d": END},
    ).fetchall()
    once = fresh.execute(
        f"select {cols} from loan_daily where dt = $d and outstanding_principal > 0 order by loan_id",
        {"d": END},
    ).fetchall()
    assert once == daily and len(daily) > 200


def test_rerunning_a_date_reproduces_its_rows(book: duckdb.DuckDBPyConnection) -> None:
    """With unchanged inputs a rerun of a past date writes exactly what it wrote before."""
    d = DAYS[100]
    before = book.execute(
        "select * from loan_daily where dt = $d order by loan_id", {"d": d}
    ).fetchall()
    reports_before = {name: table(book, name, d) for name in REPORTS}
    ledger_step(book, d, run_id="daily")
    assert (
        book.execute("select * from loan_daily where dt = $d order by loan_id", {"d": d}).fetchall()
        == before
    )
    assert {name: table(book, name, d) for name in REPORTS} == reports_before


@pytest.mark.parametrize("d", [DAYS[45], DAYS[100], END], ids=str)
def test_every_loan_with_a_balance_is_in_exactly_one_bucket(
    book: duckdb.DuckDBPyConnection, d: date
) -> None:
    """loan_delinquency: one row per loan, bucket consistent with dpd, positive balance."""
    rows = table(book, "loan_delinquency", d)
    loans = book.execute(
        "select count(*) from loan_daily where dt = $d and outstanding_principal > 0", {"d": d}
    ).fetchall()[0]
    assert rows.num_rows == loans[0] > 0  # type: ignore[index]
    bad = query(
        """select count(*) from rows where outstanding_principal <= 0 or bucket <> case when dpd = 0 then 'M0'
           when dpd <= 30 then 'M1' when dpd <= 60 then 'M2' when dpd <= 90 then 'M3' when dpd <= 120 then 'M4'
           when dpd <= 180 then 'M5' else 'M6+' end""",
        rows=rows,
    )[0]
    assert bad == (0,)
    assert query("select count(*) - count(distinct loan_id) from rows", rows=rows)[0] == (0,)


@pytest.mark.parametrize("d", [DAYS[45], DAYS[100], END], ids=str)
def test_summary_adds_up_to_the_portfolio(book: duckdb.DuckDBPyConnection, d: date) -> None:
    """Accounts and balances over all segments and buckets equal the book; shares sum to 1 per segment."""
    summary = table(book, "delinquency_summary", d)
    portfolio = book.execute(
        "select count(*), sum(outstanding_principal) from loan_daily where dt = $d and outstanding_principal > 0",
        {"d": d},
    ).fetchall()[0]
    assert query("select sum(accounts), sum(balance) from summary", summary=summary)[0] == portfolio
    shares = query(
        "select product, city_tier, sum(pct_accounts), sum(pct_balance) from summary group by all",
        summary=summary,
    )
    assert all(abs(a - 1) < 1e-9 and abs(b - 1) < 1e-9 for _, _, a, b in shares)


@pytest.mark.parametrize("d", [DAYS[60], DAYS[100], END], ids=str)
def test_each_roll_rate_row_sums_to_one(book: duckdb.DuckDBPyConnection, d: date) -> None:
    """From every bucket 30 days ago, the rates to all destinations (CLOSED included) sum to 1."""
    rolls = table(book, "roll_rates", d)
    sums = query(
        "select from_bucket, sum(account_rate), sum(balance_rate) from rolls group by all",
        rolls=rolls,
    )
    assert sums and all(abs(a - 1) < 1e-9 and abs(b - 1) < 1e-9 for _, a, b in sums)
    earlier = book.execute(
        "select count(*) from loan_daily where dt = $d and outstanding_principal > 0",
        {"d": d - timedelta(days=30)},
    ).fetchall()[0]
    assert query("select sum(accounts) from rolls", rolls=rolls)[0] == earlier


def test_vintage_rates_never_fall_and_future_cells_are_null(
    book: duckdb.DuckDBPyConnection,
) -> None:
    """Ever-30+/90+ rates are cumulative in months on book; cells after the report date are null."""
    v = table(book, "vintage", END)
    falling = query(
        """select count(*) from (
               select ever_30plus_rate - lag(ever_30plus_rate) over w d30,
                      ever_90plus_rate - lag(ever_90plus_rate) over w d90,
                      ever_30plus_rate_principal - lag(ever_30plus_rate_principal) over w p30
               from v window w as (partition by origination_month order by months_on_book))
           where d30 < 0 or d90 < 0 or p30 < 0""",
        v=v,
    )[0]
    assert falling == (0,)
    future = query(
        """select count(*) filter (where ever_30plus_rate is not null), count(*) from v
           where origination_month + to_months(months_on_book) > date_trunc('month', $end::DATE)""",
        {"end": END},
        v=v,
    )[0]
    assert future is not None and future[0] == 0 and future[1] > 0
    past = query(
        "select count(*) from v where ever_30plus_rate is null and origination_month + to_months(months_on_book) <= date_trunc('month', $end::DATE)",
        {"end": END},
        v=v,
    )[0]
    assert past == (0,)
    assert query("select max(ever_30plus_rate) from v", v=v)[0][0] > 0  # type: ignore[index]


def test_lagged_rate_corrects_for_growth(book: duckdb.DuckDBPyConnection) -> None:
    """In a growing book the 30+ rate on the balance 30 days ago is above the coincident rate."""
    rates = table(book, "delinquency_rates", END)
    rows = query(
        "select product, coincident_30plus_rate, lagged_30plus_rate, balance, balance_30d_ago from rates",
        rates=rates,
    )
    assert {r[0] for r in rows} == {"CASH_LOAN", "MERCHANT_LOAN"}
    for _, coincident, lagged, balance, earlier in rows:
        if balance > earlier:
            assert lagged >= coincident

"""The loan ledger: every active loan's position at the end of each business date.

``ledger_step`` turns the state at the previous processed date plus everything delivered
since into the state at the business date (``loan_daily``), so a nightly step costs in
proportion to the active book, not to history. Dates may be sparse: a step applies all
deliveries after the previous state. The SQL lives in ``transforms/sql/``, one model per
file, as named steps.

Tables it keeps beside the delivered ones:

- ``schedule``: instalments with the cumulative amount before each (the waterfall's axis);
- ``repayments``: successful repayments by txn_id, to resolve the repayment a reversal names;
- ``loan_daily``: one row per active loan and date (the state, and its history);
- ``loan_archive``: a loan's last row once it has been repaid for ``grace_days`` (a late
  reversal can still reopen it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from creditflow.transforms.inputs import Slice, Stage, StageRunner, run_in_process
from creditflow.transforms.queries import sql
from creditflow.warehouse import ensure_schema, scalar, transaction

EARLIEST = date(1900, 1, 1)
GRACE_DAYS = 35  # repaid loans stay active this long: bounced auto-debits are reversed days later

_STATE_COLUMNS = """
    dt DATE not null,
    loan_id VARCHAR not null,
    customer_id VARCHAR not null,
    product VARCHAR not null,
    originated_on DATE not null,
    origination_month DATE not null,
    months_on_book INTEGER not null,
    principal DECIMAL(18,2) not null,
    total_due DECIMAL(18,2) not null,
    paid_total DECIMAL(18,2) not null,       -- net of reversals
    outstanding_principal DECIMAL(18,2) not null,
    overdue_amount DECIMAL(18,2) not null,
    credit DECIMAL(18,2) not null,           -- paid beyond the whole schedule
    dpd INTEGER not null,
    bucket VARCHAR not null,
    first_30plus_on DATE,
    first_90plus_on DATE,
    max_dpd INTEGER not null,
    closed_on DATE                           -- first date with nothing outstanding
"""


def ensure_ledger_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in (
        """create table if not exists schedule (
            loan_id VARCHAR not null, installment_no INTEGER not null, due_date DATE not null,
            principal_due DECIMAL(18,2) not null, interest_due DECIMAL(18,2) not null,
            cum_before DECIMAL(18,2) not null, dt DATE not null)""",
        """create table if not exists repayments (
            txn_id VARCHAR not null, loan_id VARCHAR not null, amount DECIMAL(18,2) not null, dt DATE not null)""",
        f"create table if not exists loan_daily ({_STATE_COLUMNS})",
        # ledger_runs.loans_without_schedule counts loans delivered in that step's window
        f"create table if not exists loan_archive ({_STATE_COLUMNS}, archived_on DATE not null)",
        """create table if not exists ledger_runs (
            dt DATE not null, prev_dt DATE, run_id VARCHAR not null, active_loans BIGINT not null,
            archived_loans BIGINT not null, loans_without_schedule BIGINT not null, seconds DOUBLE not null)""",
        # a new version each time a date's state is written: copies of it elsewhere (the
        # shard store of creditflow.execution.shard_store) know when they are stale
        """create table if not exists state_versions (
            table_name VARCHAR not null, dt DATE not null, version VARCHAR not null)""",
    ):
        con.execute(ddl)


@dataclass(frozen=True)
class LedgerResult:
    business_date: date
    previous_date: date | None
    active_loans: int
    archived_loans: int
    loans_without_schedule: int
    seconds: float


def ledger_step(
    con: duckdb.DuckDBPyConnection,
    business_date: date,
    *,
    run_id: str,
    grace_days: int = GRACE_DAYS,
    run: StageRunner = run_in_process,
) -> LedgerResult:
    """Compute ``loan_daily`` for ``business_date`` (replacing it if it exists), in one
    transaction. ``run`` computes the state: here, or where the step's executor runs it."""
    t0 = time.perf_counter()
    ensure_ledger_schema(con)
    prev = previous_step(con, business_date)
    with transaction(con):
        # a rerun of the date replaces what it wrote before, and nothing else
        clear_date(con, business_date)
        state = run(con, LEDGER, business_date, **window_of(prev))
        return store_state(con, business_date, prev, run_id, state, t0, grace_days=grace_days)


def window_of(prev: date | None) -> dict[str, date | None]:
    """The step's parameters: the previous state's date and the start of the delivery window
    (exclusive); the whole history on a first step."""
    return {"prev": prev, "after": prev or EARLIEST}


def state_rows(
    con: duckdb.DuckDBPyConnection, business_date: date, *, prev: date | None, after: date
) -> pa.Table:
    """The kernel: every loan's position at the end of the date, from the state at ``prev``
    and what was delivered after ``after`` (sources brought up to date by ``prepare``)."""
    window = {"after": after, "d": business_date}
    try:
        con.execute(f"create or replace temp table ledger_events as {sql('ledger_events')}", window)
        return con.sql(sql("ledger_state"), params={**window, "prev": prev}).to_arrow_table()
    finally:
        con.execute("drop table if exists ledger_events")


def store_state(
    con: duckdb.DuckDBPyConnection,
    business_date: date,
    prev: date | None,
    run_id: str,
    state: pa.Table,
    t0: float,
    *,
    grace_days: int = GRACE_DAYS,
) -> LedgerResult:
    """Write the kernel's rows: open loans (and those repaid within the grace period) to
    ``loan_daily``, the rest to ``loan_archive``; record the step. Inside the caller's
    transaction."""
    keep = "outstanding_principal > 0 or closed_on > $d - $grace"
    params = {"d": business_date, "grace": grace_days}
    con.register("_state", state)
    try:
        con.execute(f"insert into loan_daily select * from _state where {keep}", params)
        con.execute(f"insert into loan_archive select *, $d from _state where not ({keep})", params)
    finally:
        con.unregister("_state")
    return record_step(con, business_date, prev, run_id, t0)


def _prepare(
    con: duckdb.DuckDBPyConnection, business_date: date, *, prev: date | None, after: date
) -> None:
    refresh_sources(con, after, business_date)


def ensure_ledger_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The delivered tables and the ledger's on a connection: a stage's ``setup`` on a
    shard's empty DuckDB."""
    ensure_schema(con)
    ensure_ledger_schema(con)


def previous_step(con: duckdb.DuckDBPyConnection, business_date: date) -> date | None:
    """The previous *processed* date: loan_daily may have no rows on it (an empty book)."""
    return scalar(con, "select max(dt) from ledger_runs where dt < $d", {"d": business_date})  # type: ignore[return-value]


def clear_date(con: duckdb.DuckDBPyConnection, business_date: date) -> None:
    """What a step for the date wrote before (a rerun replaces it)."""
    con.execute("delete from loan_daily where dt = $d", {"d": business_date})
    con.execute("delete from loan_archive where archived_on = $d", {"d": business_date})


def refresh_sources(con: duckdb.DuckDBPyConnection, after: date, business_date: date) -> None:
    """Bring ``schedule`` and ``repayments`` up to the date from what was delivered after
    ``after``: schedules of loans whose instalments arrived (with the waterfall's axis), and
    the window's successful repayments."""
    window = {"after": after, "d": business_date}
    con.execute(
        """
        create or replace temp table _touched as
        select distinct loan_id from installments where dt > $after and dt <= $d
        """,
        window,
    )
    con.execute("delete from schedule where loan_id in (select loan_id from _touched)")
    con.execute(
        """
        insert into schedule
        select loan_id, installment_no, due_date, principal_due, interest_due,
               coalesce(sum(principal_due + interest_due) over (
                   partition by loan_id order by installment_no
                   rows between unbounded preceding and 1 preceding), 0) as cum_before,
               dt
        from installments
        where loan_id in (select loan_id from _touched) and dt <= $d
        """,
        {"d": business_date},
    )
    con.execute("drop table _touched")
    con.execute("delete from repayments where dt > $after and dt <= $d", window)
    con.execute(
        """
        insert into repayments
        select txn_id, loan_id, amount, dt from transactions
        where dt > $after and dt <= $d and txn_type = 'REPAYMENT' and status = 'SUCCESS'
        """,
        window,
    )


def record_step(
    con: duckdb.DuckDBPyConnection,
    business_date: date,
    prev: date | None,
    run_id: str,
    t0: float,
) -> LedgerResult:
    """Count the date's active and archived loans and record the step in ``ledger_runs``."""
    window = {"after": prev or EARLIEST, "d": business_date}
    active = int(
        scalar(con, "select count(*) from loan_daily where dt = $d", {"d": business_date}) or 0
    )
    archived = int(
        scalar(
            con,
            "select count(*) from loan_archive where archived_on = $d",
            {"d": business_date},
        )
        or 0
    )
    unscheduled = int(
        scalar(
            con,
            # loans delivered in this step's window only: checking every loan ever
            # delivered each night would grow with history
            """select count(*) from loans where dt > $after and dt <= $d
               and loan_id not in (select loan_id from schedule)""",
            window,
        )
        or 0
    )
    seconds = time.perf_counter() - t0
    con.execute(
        "delete from state_versions where table_name = 'loan_daily' and dt = $d",
        {"d": business_date},
    )
    con.execute(
        "insert into state_versions values ('loan_daily', $d, uuid()::VARCHAR)",
        {"d": business_date},
    )
    con.execute("delete from ledger_runs where dt = $d", {"d": business_date})
    con.execute(
        "insert into ledger_runs values ($d, $prev, $run, $active, $archived, $unscheduled, $s)",
        {
            "d": business_date,
            "prev": prev,
            "run": run_id,
            "active": active,
            "archived": archived,
            "unscheduled": unscheduled,
            "s": seconds,
        },
    )
    return LedgerResult(business_date, prev, active, archived, unscheduled, seconds)


# What the ledger reads for a step, by loan. $after (exclusive) .. $d (inclusive) is the
# step's window; $prev the previous state's date.
_WINDOW_REPAYMENTS = """select txn_id, loan_id from transactions
    where dt > $after and dt <= $d and txn_type = 'REPAYMENT' and status = 'SUCCESS'"""
_REVERSALS = """select reverses_txn_id from transactions
    where dt > $after and dt <= $d and txn_type = 'REVERSAL' and status = 'SUCCESS'"""
_TOUCHED = "select loan_id from installments where dt > $after and dt <= $d"
# loans something happened to in the window: the archived ones among them can come back
_EVENT_LOANS = f"""select loan_id from ({_WINDOW_REPAYMENTS})
    union select loan_id from repayments where txn_id in ({_REVERSALS})"""

LEDGER = Stage(
    name="ledger",
    slices=(
        Slice("loan_daily", "select *, loan_id as shard_key from loan_daily where dt = $prev"),
        Slice(
            "loan_archive",
            f"""select *, loan_id as shard_key from loan_archive
                where archived_on <> $d and loan_id in ({_EVENT_LOANS})""",
        ),
        Slice(
            "schedule",
            f"""select *, loan_id as shard_key from schedule
                where loan_id in (select loan_id from loan_daily where dt = $prev)
                   or loan_id in (select loan_id from loans where dt > $after and dt <= $d)
                   or loan_id in ({_EVENT_LOANS})""",
        ),
        Slice(
            "installments",
            f"select *, loan_id as shard_key from installments where dt <= $d and loan_id in ({_TOUCHED})",
        ),
        Slice(
            "loans",
            f"""select *, loan_id as shard_key from loans
                where dt <= $d and ((dt > $after) or loan_id in ({_TOUCHED}))""",
        ),
        # the repayments that the window's reversals undo, wherever they were delivered
        Slice(
            "repayments",
            f"select *, loan_id as shard_key from repayments where txn_id in ({_REVERSALS})",
        ),
        # a REVERSAL carries no loan_id: it goes to the shard of the repayment it undoes
        Slice(
            "transactions",
            f"""select t.*,
                       case when t.txn_type = 'REVERSAL' then coalesce(target.loan_id, '')
                            else t.loan_id end as shard_key
                from transactions as t
                left join (
                    select txn_id, any_value(loan_id) as loan_id
                    from (select txn_id, loan_id from repayments
                          union all {_WINDOW_REPAYMENTS})
                    group by txn_id
                ) as target on t.txn_type = 'REVERSAL' and target.txn_id = t.reverses_txn_id
                where t.dt > $after and t.dt <= $d and t.txn_type in ('REPAYMENT', 'REVERSAL')""",
        ),
    ),
    setup=ensure_ledger_tables,
    prepare=_prepare,
    kernel=state_rows,
)

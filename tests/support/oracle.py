"""A deliberately plain reading of the contract, to check the generator and the pipeline against.

It recomputes every loan's dpd on every day from scratch with one range join: slow in
principle, obviously right, and independent of the incremental ledger and of the simulator.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from creditflow.contract import EXTRACTS, Extract
from creditflow.warehouse import use_business_time_zone


def read_extract(con: duckdb.DuckDBPyConnection, landing: Path, extract: Extract) -> None:
    """Create table ``<extract>`` from every CSV delivery, strictly typed, with the folder's dt."""
    columns = {c.name: c.kind.duckdb for c in extract.columns}
    con.execute(
        f"""
        create or replace table {extract.name} as
        select * from read_csv(
            $glob, header = true, columns = $columns, hive_partitioning = true,
            hive_types = {{'dt': 'DATE'}}, strict_mode = true, auto_detect = false
        )
        """,
        {"glob": str(landing / "dt=*" / f"{extract.name}.csv.gz"), "columns": columns},
    )


def load_landing(landing: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    use_business_time_zone(con)
    for extract in EXTRACTS:
        read_extract(con, landing, extract)
    return con


def load_as_warehouse(landing: Path) -> duckdb.DuckDBPyConnection:
    """The delivered files as warehouse tables (ingest is tested on its own), with the views."""
    from creditflow.warehouse import ensure_schema

    con = load_landing(landing)
    for e in EXTRACTS:
        con.execute(f"alter table {e.name} add column load_id VARCHAR default 'test'")
    con.execute("alter table transactions add column is_late BOOLEAN default false")
    ensure_schema(con)
    return con


def run_ledger(con: duckdb.DuckDBPyConnection, start: date, end: date) -> None:
    """Run the ledger day by day from ``start`` to ``end``, as the nightly flow does."""
    from creditflow.transforms.ledger import ledger_step

    d = start
    while d <= end:
        ledger_step(con, d, run_id="test")
        d += timedelta(days=1)


def build_daily_dpd(con: duckdb.DuckDBPyConnection, end: str) -> None:
    """Table ``daily`` (loan_id, customer_id, d, dpd, outstanding_principal) up to ``end``."""
    con.execute(
        f"""
        create or replace table oracle_schedule as
        select
            loan_id,
            installment_no,
            due_date,
            principal_due,
            interest_due,
            sum(principal_due + interest_due) over w - (principal_due + interest_due) as cum_before
        from installments
        window w as (partition by loan_id order by installment_no)
        ;
        create or replace table oracle_money as
        -- a repayment counts from the date it was delivered (figures for d use what was known
        -- by d); a reversal takes its (successful) repayment back from its own delivery date
        select r.loan_id, r.dt as d, r.amount as amount
        from transactions r
        where r.txn_type = 'REPAYMENT' and r.status = 'SUCCESS'
        union all
        select r.loan_id, v.dt as d, -r.amount as amount
        from transactions v
        join transactions r on r.txn_id = v.reverses_txn_id and r.status = 'SUCCESS'
        where v.txn_type = 'REVERSAL' and v.status = 'SUCCESS'
        ;
        create or replace table oracle_grid as
        select l.loan_id, l.customer_id, cast(d.d as date) as d
        from loans l, range(cast(l.originated_at as date), date '{end}' + 1, interval 1 day) d(d)
        ;
        create or replace table oracle_paid as
        select g.loan_id, g.d, coalesce(sum(m.amount), 0) as paid
        from oracle_grid g left join oracle_money m on m.loan_id = g.loan_id and m.d <= g.d
        group by all
        ;
        create or replace table daily as
        select
            g.loan_id,
            g.customer_id,
            g.d,
            coalesce(max(case when s.due_date < g.d then g.d - s.due_date end)
                filter (where s.cum_before + s.principal_due + s.interest_due > p.paid), 0) as dpd,
            sum(s.principal_due - least(greatest(p.paid - s.cum_before - s.interest_due, 0), s.principal_due))
                as outstanding_principal
        from oracle_grid g
        join oracle_paid p using (loan_id, d)
        join oracle_schedule s on s.loan_id = g.loan_id
        group by all
        """
    )


def bucket_sql(dpd: str) -> str:
    return f"""case when {dpd} = 0 then 'M0' when {dpd} <= 30 then 'M1' when {dpd} <= 60 then 'M2'
        when {dpd} <= 90 then 'M3' when {dpd} <= 120 then 'M4' when {dpd} <= 180 then 'M5' else 'M6+' end"""


def reminders(
    con: duckdb.DuckDBPyConnection, d: date, due_soon_days: tuple[int, ...]
) -> set[tuple]:
    """The reminder notices of business date ``d`` from the delivered files alone (``con`` from
    ``load_landing``): DUE_SOON for instalments due ``due_soon_days`` after the sending day
    d + 1 and DUE_TODAY for those due on it, with the amount the contract's waterfall leaves
    unpaid by what was delivered up to ``d``; AUTO_DEBIT_FAILED per loan for the failed
    auto-debits and reversed repayments delivered on ``d``. Rows: (type, customer, loan,
    instalment, due date, amount)."""
    offsets = [k + 1 for k in due_soon_days] + [1]  # days after d
    rows = con.execute(
        """
        with lines as (
            select i.loan_id, l.customer_id, i.installment_no, i.due_date,
                   i.principal_due + i.interest_due as amount,
                   sum(i.principal_due + i.interest_due) over (partition by i.loan_id order by i.installment_no)
                       - (i.principal_due + i.interest_due) as before
            from installments i join loans l using (loan_id)
            where i.dt <= $d and l.dt <= $d
        ),
        money as (
            select loan_id, amount from transactions
            where txn_type = 'REPAYMENT' and status = 'SUCCESS' and dt <= $d
            union all
            select r.loan_id, -r.amount from transactions v
            join transactions r on r.txn_id = v.reverses_txn_id and r.status = 'SUCCESS'
            where v.txn_type = 'REVERSAL' and v.status = 'SUCCESS' and v.dt <= $d
        ),
        paid as (select loan_id, sum(amount) as paid from money group by loan_id),
        due as (
            select case when due_date = $d::DATE + 1 then 'DUE_TODAY' else 'DUE_SOON' end,
                   customer_id, loan_id, installment_no, due_date,
                   amount - least(greatest(coalesce(p.paid, 0) - before, 0), amount) as unpaid
            from lines left join paid p using (loan_id)
            where list_contains($offsets, due_date - $d::DATE)
        ),
        failed as (
            select 'AUTO_DEBIT_FAILED', customer_id, loan_id, null::INTEGER, null::DATE, sum(amount)
            from (
                select customer_id, loan_id, amount from transactions
                where dt = $d and txn_type = 'REPAYMENT' and channel = 'AUTO_DEBIT' and status = 'FAILED'
                union all
                select v.customer_id, r.loan_id, r.amount from transactions v
                join transactions r on r.txn_id = v.reverses_txn_id and r.status = 'SUCCESS'
                where v.dt = $d and v.txn_type = 'REVERSAL' and v.status = 'SUCCESS'
            ) group by all
        )
        select * from due where unpaid > 0
        union all
        select * from failed
        """,
        {"d": d, "offsets": offsets},
    ).fetchall()
    return {tuple(r) for r in rows}

"""One nightly ledger step with 1 million active loans, next to a bare scan of its inputs.

    .venv/bin/python benchmarks/ledger_bench.py [--loans 1000000] [--repeat 3]

Builds a warehouse outside the repository: loans originated over the 180 days before the
business date (six monthly instalments each), nine in ten instalments repaid on their due
date, and a day's deliveries for the business date. The state at the day before is built
once, then the step for the business date is timed (median of --repeat reruns; a rerun
replaces the date). The bare figure is DuckDB scanning exactly what the step reads: the
previous state, the schedule, and the day's transactions and loans.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")

import duckdb

from creditflow.transforms.ledger import ensure_ledger_schema, ledger_step
from creditflow.warehouse import ensure_schema, use_business_time_zone

D = date(2026, 3, 1)


def build(con: duckdb.DuckDBPyConnection, loans: int) -> None:
    ensure_schema(con)
    ensure_ledger_schema(con)
    con.execute(
        """
        insert into loans
        select
            'L' || lpad(i::VARCHAR, 12, '0'),
            'C' || lpad((i % ($n * 7 // 10))::VARCHAR, 9, '0'),
            timestamptz '2025-09-02 10:00:00+08' + to_days((i % 180)::INTEGER),
            case when i % 5 = 0 then 'MERCHANT_LOAN' else 'CASH_LOAN' end,
            1200.00, 6, 0.120000, 'EQUAL_INSTALLMENT',
            date '2025-09-02' + (i % 180)::INTEGER, 'bench'
        from range($n) t(i)
        """,
        {"n": loans},
    )
    con.execute(
        """
        insert into installments
        select loan_id, k, cast(dt + to_months(k) as DATE), 200.00, 12.00, dt, 'bench'
        from loans, range(1, 7) r(k)
        """
    )
    # nine in ten instalments are repaid on their due date (up to the business date)
    con.execute(
        """
        insert into transactions
        select 'T' || lpad(row_number() over ()::VARCHAR, 14, '0'), l.customer_id, i.loan_id,
               i.due_date::TIMESTAMPTZ + interval 9 hour, 'REPAYMENT', 212.00, 'CNY', 'AUTO_DEBIT', null,
               'SUCCESS', null, false, i.due_date, 'bench'
        from installments i join loans l using (loan_id)
        where i.due_date <= $d and hash(i.loan_id, i.installment_no) % 10 <> 0
        """,
        {"d": D},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="creditflow-ledger-bench-"))
    try:
        con = duckdb.connect(str(root / "warehouse.duckdb"))
        use_business_time_zone(con)
        t0 = time.perf_counter()
        build(con, args.loans)
        ledger_step(con, D - timedelta(days=1), run_id="bench")  # the state the night starts from
        print(
            f"built {args.loans:,} loans and the state at {D - timedelta(days=1)} in {time.perf_counter() - t0:.0f} s"
        )
        steps, scans, joins = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            result = ledger_step(con, D, run_id="bench")
            steps.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(
                """
                select
                    (select count(*) + sum(paid_total) + sum(principal) from loan_daily where dt = $prev),
                    (select count(*) + sum(cum_before) + sum(principal_due + interest_due) from schedule),
                    (select count(*) + sum(amount) from transactions where dt = $d),
                    (select count(*) from loans where dt = $d)
                """,
                {"d": D, "prev": D - timedelta(days=1)},
            ).fetchall()
            scans.append(time.perf_counter() - t)
            # the irreducible core of the step: previous state joined to the schedule, per loan, written
            t = time.perf_counter()
            con.execute(
                """
                create or replace temp table _core as
                select l.loan_id, sum(least(greatest(l.paid_total - s.cum_before, 0), s.principal_due + s.interest_due)) as applied
                from loan_daily l join schedule s using (loan_id)
                where l.dt = $prev
                group by l.loan_id
                """,
                {"prev": D - timedelta(days=1)},
            )
            joins.append(time.perf_counter() - t)
        step, scan, join = (
            statistics.median(steps),
            statistics.median(scans),
            statistics.median(joins),
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("\n| step | median s | active loans/s |\n|---|---:|---:|")
        print(f"| ledger step | {step:.2f} | {result.active_loans / step:,.0f} |")
        print(f"| bare scan of its inputs | {scan:.2f} | {result.active_loans / scan:,.0f} |")
        print(
            f"| bare join state x schedule, per loan | {join:.2f} | {result.active_loans / join:,.0f} |"
        )
        print(
            f"\nactive loans {result.active_loans:,}; step / scan = {step / scan:.1f}; step / join = {step / join:.1f}; "
            f"peak RSS {peak:,.0f} MiB; "
            f"cores {os.cpu_count()}; runs {args.repeat}"
        )
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

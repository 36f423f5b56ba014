"""The relations ingest's rules read besides today's files: what earlier dates loaded.

``wh`` is the attached warehouse's name in the validation session's database.
"""

from __future__ import annotations

from datetime import date

import duckdb

from creditflow.transforms.ingest.rules import SHANGHAI_DATE


def prepare_references(con: duckdb.DuckDBPyConnection, business_date: date, wh: str) -> None:
    """Relations the rules read: what is known as of the date, and what other dates loaded.

    Called after staging. The rules that look back over all history ("unique across all
    dates", "a reversal names a repayment") only ever match ids that are in today's files,
    so each view keeps just those: DuckDB then builds its hash table on today's ids and
    streams the history past it, instead of holding every id ever loaded in memory (at a
    million customers that is hundreds of millions of transaction ids).
    """
    con.execute(
        "create or replace table ctx as select $d::DATE as business_date", {"d": business_date}
    )
    d = "(select business_date from ctx)"
    con.execute(
        f"""create or replace view prior_loans as select loan_id from {wh}.loans
            where dt <> {d} and loan_id in (select loan_id from stg_loans)"""
    )
    # one pass over the transaction history serves the three rules that read it (and their
    # Great Expectations twins): the rows whose ids appear in today's file
    # (two semi joins rather than one OR of three IN lists: a third faster at 1M customers)
    con.execute(
        f"""create or replace table history_txns as
            select txn_id, txn_type, reverses_txn_id, dt from {wh}.transactions
            where dt <> {d}
              and txn_id in (select txn_id from stg_transactions
                             union all
                             select reverses_txn_id from stg_transactions
                             where reverses_txn_id is not null)
            union all
            select txn_id, txn_type, reverses_txn_id, dt from {wh}.transactions
            where dt <> {d} and txn_type = 'REVERSAL'
              and reverses_txn_id in (select reverses_txn_id from stg_transactions
                                      where reverses_txn_id is not null)"""
    )
    con.execute("create or replace view prior_txns as select txn_id from history_txns")
    con.execute(
        f"""create or replace view prior_installments as select loan_id, installment_no
            from {wh}.installments
            where dt <> {d} and loan_id in (select loan_id from stg_installments)"""
    )
    con.execute(
        """create or replace view prior_reversals as select reverses_txn_id from history_txns
            where txn_type = 'REVERSAL'"""
    )


def add_reference_views(con: duckdb.DuckDBPyConnection, extract: str, wh: str) -> None:
    """After an extract is routed, its clean rows become known to the extracts after it."""
    d = "(select business_date from ctx)"
    if extract == "customers":
        con.execute(
            f"""create or replace view ref_customers as
                select customer_id from {wh}.customers where dt < {d}
                union select customer_id from ok_customers"""
        )
    elif extract == "loans":
        con.execute(
            f"""create or replace view ref_loans as
                select loan_id, customer_id, {SHANGHAI_DATE.format(col="originated_at")} as origination_date,
                       principal, term_months
                from {wh}.loans where dt < {d}
                union all
                select loan_id, customer_id, {SHANGHAI_DATE.format(col="originated_at")}, principal, term_months
                from ok_loans"""
        )
    if extract == "loans":
        # a REVERSAL may name a repayment delivered earlier or in today's file;
        # the cascade rule then holds back reversals whose target was itself held back
        con.execute(
            f"""create or replace view ref_repayments as
                select txn_id from history_txns where dt < {d} and txn_type = 'REPAYMENT'
                union all
                select txn_id from stg_transactions where txn_type = 'REPAYMENT'"""
        )

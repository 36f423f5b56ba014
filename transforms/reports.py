"""Delinquency reports of a business date, from the ledger, as relations ready to publish."""

from __future__ import annotations

from datetime import date

import duckdb

from creditflow.transforms.queries import sql

# contract tables first; delinquency_rates is an addition (coincident and lagged 30+ rates)
REPORTS = ("loan_delinquency", "delinquency_summary", "roll_rates", "vintage", "delinquency_rates")


def report(
    con: duckdb.DuckDBPyConnection, name: str, business_date: date, run_id: str
) -> duckdb.DuckDBPyRelation:
    """The report's rows for the date; ``dt`` included (publication moves it to the path)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; one of {REPORTS}")
    return con.sql(sql(name), params={"d": business_date, "run_id": run_id})


def bucket_mix(con: duckdb.DuckDBPyConnection, business_date: date) -> list[tuple]:
    """(bucket, accounts, balance, share of balance) of the loans open on the date: the
    delinquency picture the run artifacts and the demo summary both show."""
    return con.execute(
        """select bucket, count(*), sum(outstanding_principal),
                  sum(outstanding_principal) / sum(sum(outstanding_principal)) over ()
           from loan_daily where dt = $d and outstanding_principal > 0
           group by bucket order by bucket""",
        {"d": business_date},
    ).fetchall()

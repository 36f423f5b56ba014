"""Replay the UCI Taiwan credit-card statements as landing-zone deliveries.

Data: "Default of credit card clients" (Yeh & Lien, 2009; UCI #350, DOI 10.24432/C55S3H,
CC BY 4.0), in ``datasets/uci_credit_card/UCI_Credit_Card.csv``. PAY_6 .. PAY_0 give
each client's repayment status for April .. September 2005: -2, -1 and 0 mean paid duly
(or nothing to pay, or revolving), k >= 1 means payment delayed k months.

The mapping, so that the ledger's dpd on each statement date is the delay the statement
reports:

- each client is a customer with one loan of fifteen 100.00 instalments due every 30 days,
  the last on the September statement date; statement month m (April = 0) is instalment m's
  due date, and there are nine instalments before April so a 9-month delay fits;
- status k >= 1 on statement m means instalment m - k is the oldest unpaid one, so the
  ledger's dpd is 30 k (bucket M1 for k = 1, M2 for 2, M3 for 3, M4 for 4, M5 for 5-6, M6+
  for 7-9); status <= 0 means everything due by the statement is paid (M0);
- the repayment delivered on each statement date brings the amount paid to what the status
  requires. A status that would need money taken back (current one month, two months late
  the next) cannot come from repayments; the replay keeps the amount paid and such a
  client-month is reported as inconsistent, not forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from creditflow.upstream.generate import deliver
from creditflow.upstream.simulation import SHANGHAI_OFFSET_S, DayOutput, day_number

INSTALMENT_FEN = 10_000  # 100.00 per instalment
FIRST_STATEMENT = date(2005, 4, 15)  # April 2005, month 0
PRIOR = 9  # instalments before April, so a nine-month delay has one to point at
MONTHS = 6
STATUS_COLUMNS = ("PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_0")  # April .. September


def statement_date(m: int) -> date:
    return FIRST_STATEMENT + timedelta(days=30 * m)


def expected_bucket(status: int) -> str:
    if status <= 0:
        return "M0"
    return {1: "M1", 2: "M2", 3: "M3", 4: "M4", 5: "M5", 6: "M5"}.get(status, "M6+")


@dataclass(frozen=True)
class Replay:
    statuses: pl.DataFrame  # client id, month, status, expected bucket, consistent
    dates: list[date]  # delivery dates: origination, then the six statements


def _paid_required(status: np.ndarray, m: int) -> np.ndarray:
    """Instalments covered on statement m: through m when current, through m - k - 1 when k late."""
    covered_through = np.where(status >= 1, m - status - 1, m)
    return (covered_through + PRIOR + 1) * INSTALMENT_FEN


def replay(csv: Path, landing: Path, limit: int | None = None) -> Replay:
    # amounts are written like 1e+05 in places; only ID, SEX, AGE and PAY_* are used, as integers
    raw = pl.read_csv(csv, infer_schema=False).select(
        pl.col(["ID", "SEX", "AGE", *STATUS_COLUMNS]).cast(pl.Int64)
    )
    if limit:
        raw = raw.head(limit)
    ids = raw["ID"].to_numpy()
    customers = ("U" + pl.Series(ids).cast(pl.String).str.zfill(9)).to_numpy()
    loans = ("LU" + pl.Series(ids).cast(pl.String).str.zfill(14)).to_numpy()
    n = len(ids)
    origination = statement_date(-PRIOR) - timedelta(days=30)
    dates = [origination] + [statement_date(m) for m in range(MONTHS)]

    sex = raw["SEX"].to_numpy()
    age = raw["AGE"].to_numpy()
    customers_df = pl.DataFrame(
        {
            "customer_id": customers,
            "registered_on": np.full(n, np.datetime64(origination - timedelta(days=365), "D")),
            "birth_year": (2004 - age).astype(np.int32),
            "gender": np.where(sex == 1, "M", np.where(sex == 2, "F", "U")),
            "city_tier": np.full(n, 1, dtype=np.int32),  # Taipei-area card book; not in the data
            "occupation": np.full(n, "OTHER"),
            "kyc_level": np.full(n, 3, dtype=np.int32),
            "declared_monthly_income": pl.Series([None] * n, dtype=pl.Int64),
            "status": np.full(n, "ACTIVE"),
            "updated_at": np.full(
                n, day_number(origination) * 86400 + 9 * 3600 - SHANGHAI_OFFSET_S, dtype=np.int64
            ),
        }
    ).with_columns(pl.col("registered_on").cast(pl.Date))
    n_inst = PRIOR + MONTHS
    loans_df = pl.DataFrame(
        {
            "loan_id": loans,
            "customer_id": customers,
            "originated_at": np.full(
                n, day_number(origination) * 86400 + 10 * 3600 - SHANGHAI_OFFSET_S, dtype=np.int64
            ),
            "product": np.full(n, "CASH_LOAN"),
            "principal": np.full(n, n_inst * INSTALMENT_FEN, dtype=np.int64),
            "term_months": np.full(n, n_inst, dtype=np.int32),
            "annual_rate": np.full(
                n, 1, dtype=np.int64
            ),  # 0.000001: the replay carries no interest
            "repayment_method": np.full(n, "EQUAL_INSTALLMENT"),
        }
    )
    inst_df = pl.DataFrame(
        {
            "loan_id": np.repeat(loans, n_inst),
            "installment_no": np.tile(np.arange(1, n_inst + 1, dtype=np.int32), n),
            "due_date": np.tile(
                np.array([statement_date(j - PRIOR) for j in range(n_inst)], dtype="datetime64[D]"),
                n,
            ),
            "principal_due": np.full(n * n_inst, INSTALMENT_FEN, dtype=np.int64),
            "interest_due": np.zeros(n * n_inst, dtype=np.int64),
        }
    ).with_columns(pl.col("due_date").cast(pl.Date))

    empty = {
        name: _empty_like(name)
        for name in ("customers", "behaviour", "loans", "installments", "transactions")
    }
    _deliver(
        landing,
        origination,
        {**empty, "customers": customers_df, "loans": loans_df, "installments": inst_df},
    )

    paid = np.zeros(n, dtype=np.int64)
    rows = []
    txn_seq = 0
    for m, column in enumerate(STATUS_COLUMNS):
        status = raw[column].to_numpy()
        required = _paid_required(status, m)
        consistent = required >= paid
        amount = np.maximum(required - paid, 0)
        paid = np.maximum(paid, required)
        payers = np.flatnonzero(amount > 0)
        d = statement_date(m)
        codes = np.arange(txn_seq + 1, txn_seq + len(payers) + 1)
        txn_seq += len(payers)
        txns = pl.DataFrame(
            {
                "txn_id": ("TU" + pl.Series(codes).cast(pl.String).str.zfill(14)).to_numpy(),
                "customer_id": customers[payers],
                "loan_id": loans[payers],
                "txn_ts": np.full(
                    len(payers),
                    day_number(d) * 86400 + 9 * 3600 - SHANGHAI_OFFSET_S,
                    dtype=np.int64,
                ),
                "txn_type": np.full(len(payers), "REPAYMENT"),
                "amount": amount[payers],
                "currency": np.full(len(payers), "CNY"),
                "channel": np.full(len(payers), "BANK_CARD"),
                "merchant_category": pl.Series([None] * len(payers), dtype=pl.String),
                "status": np.full(len(payers), "SUCCESS"),
                "reverses_txn_id": pl.Series([None] * len(payers), dtype=pl.String),
            }
        )
        _deliver(landing, d, {**empty, "transactions": txns})
        rows.append(
            pl.DataFrame(
                {
                    "loan_id": loans,
                    "month": np.full(n, m),
                    "statement_date": np.full(n, np.datetime64(d, "D")),
                    "status": status,
                    "expected_bucket": [expected_bucket(int(s)) for s in status],
                    "consistent": consistent,
                }
            )
        )
    return Replay(
        statuses=pl.concat(rows).with_columns(pl.col("statement_date").cast(pl.Date)), dates=dates
    )


def _empty_like(name: str) -> pl.DataFrame:
    from creditflow.contract import EXTRACTS_BY_NAME, Kind

    internal = {
        Kind.STRING: pl.String,
        Kind.INT: pl.Int32,
        Kind.DOUBLE: pl.Float64,
        Kind.BOOLEAN: pl.Boolean,
        Kind.DATE: pl.Date,
        Kind.TIMESTAMPTZ: pl.Int64,
        Kind.MONEY: pl.Int64,
        Kind.RATE: pl.Int64,
    }
    return pl.DataFrame(schema={c.name: internal[c.kind] for c in EXTRACTS_BY_NAME[name].columns})


def _deliver(landing: Path, d: date, frames: dict[str, pl.DataFrame]) -> None:
    deliver(
        DayOutput(business_date=d, frames=frames, dependent={}),
        landing,
        "csv",
        0.0,
        np.random.default_rng(0),
    )

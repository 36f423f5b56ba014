"""The landing-zone contract (``docs/contract.md`` section 1) as data.

One definition serves the synthetic upstream (column order and Parquet types), the
loader (DuckDB types, the fixed list of file names) and the data dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

BUSINESS_TZ = "Asia/Shanghai"
BUSINESS_UTC_OFFSET_S = 8 * 3600  # Asia/Shanghai has had no daylight saving since 1991
MANIFEST_NAME = "_manifest.json"


class Kind(StrEnum):
    """Logical column types of the contract, each with one DuckDB and one Arrow spelling."""

    STRING = "string"
    INT = "int"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMPTZ = "timestamptz"
    MONEY = "decimal(18,2)"
    RATE = "decimal(8,6)"

    @property
    def duckdb(self) -> str:
        return _DUCKDB[self]

    @property
    def arrow(self) -> pa.DataType:
        return _ARROW[self]


_DUCKDB = {
    Kind.STRING: "VARCHAR",
    Kind.INT: "INTEGER",
    Kind.DOUBLE: "DOUBLE",
    Kind.BOOLEAN: "BOOLEAN",
    Kind.DATE: "DATE",
    Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
    Kind.MONEY: "DECIMAL(18,2)",
    Kind.RATE: "DECIMAL(8,6)",
}

_ARROW = {
    Kind.STRING: pa.string(),
    Kind.INT: pa.int32(),
    Kind.DOUBLE: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
    Kind.DATE: pa.date32(),
    Kind.TIMESTAMPTZ: pa.timestamp("us", tz=BUSINESS_TZ),
    Kind.MONEY: pa.decimal128(18, 2),
    Kind.RATE: pa.decimal128(8, 6),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool
    rule: str


@dataclass(frozen=True)
class Extract:
    name: str
    grain: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def file_name(self, fmt: str) -> str:
        return f"{self.name}.csv.gz" if fmt == "csv" else f"{self.name}.parquet"

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.kind.arrow, nullable=not c.required) for c in self.columns]
        )


GENDERS = ("M", "F", "U")
OCCUPATIONS = (
    "SALARIED",
    "SELF_EMPLOYED",
    "MERCHANT",
    "FREELANCER",
    "STUDENT",
    "RETIRED",
    "OTHER",
)
CUSTOMER_STATUSES = ("ACTIVE", "BLOCKED", "CLOSED")
PRODUCTS = ("CASH_LOAN", "MERCHANT_LOAN")
REPAYMENT_METHODS = ("EQUAL_INSTALLMENT", "BULLET")
TXN_TYPES = (
    "DRAWDOWN",
    "REPAYMENT",
    "PURCHASE",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "FEE",
    "REFUND",
    "REVERSAL",
)
CHANNELS = ("APP", "MINI_PROGRAM", "AUTO_DEBIT", "BANK_CARD")
TXN_STATUSES = ("SUCCESS", "FAILED")
LATE_TXN_DAYS = 3  # a transaction may arrive up to this many days after its Shanghai date

STR, INT, DBL, BOOL = Kind.STRING, Kind.INT, Kind.DOUBLE, Kind.BOOLEAN
DATE, TSTZ, MONEY, RATE = Kind.DATE, Kind.TIMESTAMPTZ, Kind.MONEY, Kind.RATE

CUSTOMERS = Extract(
    name="customers",
    grain="new or changed customer record (upsert by customer_id)",
    key=("customer_id",),
    columns=(
        Column("customer_id", STR, True, "not null; unique in the file"),
        Column("registered_on", DATE, True, "<= business date"),
        Column("birth_year", INT, True, "1900 <= birth_year <= business year"),
        Column("gender", STR, True, "M, F or U"),
        Column("city_tier", INT, True, "1-5"),
        Column("occupation", STR, True, ", ".join(OCCUPATIONS)),
        Column("kyc_level", INT, True, "1-3"),
        Column("declared_monthly_income", MONEY, False, ">= 0; may be null"),
        Column("status", STR, True, "ACTIVE, BLOCKED, CLOSED"),
        Column("updated_at", TSTZ, True, "timestamp with time zone"),
    ),
)

BEHAVIOUR = Extract(
    name="behaviour",
    grain="one row per customer active in the app that day",
    key=("customer_id", "business_date"),
    columns=(
        Column("customer_id", STR, True, "known customer"),
        Column("business_date", DATE, True, "= the folder's date"),
        Column("app_sessions", INT, True, ">= 0"),
        Column("app_minutes", DBL, True, ">= 0"),
        Column("payments_count", INT, True, ">= 0"),
        Column("payments_amount", MONEY, True, ">= 0"),
        Column("transfers_in_amount", MONEY, True, ">= 0"),
        Column("transfers_out_amount", MONEY, True, ">= 0"),
        Column("red_packets_sent", INT, True, ">= 0"),
        Column("red_packets_received", INT, True, ">= 0"),
        Column("contacts_added", INT, True, ">= 0"),
        Column("device_changed", BOOL, True, "boolean"),
        Column("night_activity_share", DBL, True, "0-1"),
        Column("wallet_balance", MONEY, True, ">= 0, end of day"),
    ),
)

LOANS = Extract(
    name="loans",
    grain="loan contract originated that day",
    key=("loan_id",),
    columns=(
        Column("loan_id", STR, True, "not null; unique across all dates"),
        Column("customer_id", STR, True, "known customer"),
        Column("originated_at", TSTZ, True, "on the business date"),
        Column("product", STR, True, "CASH_LOAN, MERCHANT_LOAN"),
        Column("principal", MONEY, True, "> 0"),
        Column("term_months", INT, True, "1-36"),
        Column("annual_rate", RATE, True, "0 < rate <= 0.24"),
        Column("repayment_method", STR, True, "EQUAL_INSTALLMENT or BULLET"),
    ),
)

INSTALLMENTS = Extract(
    name="installments",
    grain="repayment schedule line of a loan originated that day",
    key=("loan_id", "installment_no"),
    columns=(
        Column("loan_id", STR, True, "a loan in this or an earlier delivery"),
        Column("installment_no", INT, True, "1..term_months, unique per loan"),
        Column("due_date", DATE, True, "after origination, increasing with installment_no"),
        Column("principal_due", MONEY, True, ">= 0; sums to the loan's principal"),
        Column("interest_due", MONEY, True, ">= 0"),
    ),
)

TRANSACTIONS = Extract(
    name="transactions",
    grain="money movement",
    key=("txn_id",),
    columns=(
        Column("txn_id", STR, True, "not null; unique across all dates"),
        Column("customer_id", STR, True, "known customer"),
        Column("loan_id", STR, False, "required for DRAWDOWN, REPAYMENT; else null"),
        Column("txn_ts", TSTZ, True, "Shanghai date <= business date; up to 3 days late"),
        Column("txn_type", STR, True, ", ".join(TXN_TYPES)),
        Column("amount", MONEY, True, "> 0"),
        Column("currency", STR, True, "CNY"),
        Column("channel", STR, True, ", ".join(CHANNELS)),
        Column("merchant_category", STR, False, "may be null"),
        Column("status", STR, True, "SUCCESS or FAILED; only SUCCESS moves money"),
        Column("reverses_txn_id", STR, False, "required for REVERSAL; else null"),
    ),
)

# Load order matters: references point from later extracts to earlier ones.
EXTRACTS: tuple[Extract, ...] = (CUSTOMERS, BEHAVIOUR, LOANS, INSTALLMENTS, TRANSACTIONS)
EXTRACTS_BY_NAME = {e.name: e for e in EXTRACTS}


# The delinquency buckets (docs/contract.md section 2): each bucket's name and the highest
# dpd in it (the last has none). The SQL models spell the ladder out; a test holds them to it.
BUCKET_LADDER: tuple[tuple[str, int | None], ...] = (
    ("M0", 0),
    ("M1", 30),
    ("M2", 60),
    ("M3", 90),
    ("M4", 120),
    ("M5", 180),
    ("M6+", None),
)
BUCKETS: tuple[str, ...] = tuple(name for name, _ in BUCKET_LADDER)


def bucket_ranges() -> str:
    """The ladder in words: "M0 (dpd 0), M1 (1-30), ..., M6+ (over 180)"."""
    parts, low = [], 0
    for name, high in BUCKET_LADDER:
        if high is None:
            parts.append(f"{name} (over {low - 1})")
        elif high == low:
            parts.append(f"{name} (dpd {high})")
        else:
            parts.append(f"{name} ({low}-{high})")
        low = (high or 0) + 1
    return ", ".join(parts)

"""Realistic delivery defects, injected into a share of rows and recorded in a sidecar.

Only rows nothing else refers to are damaged (behaviour, ordinary transactions, updates of
existing customers), so every injected defect maps to exactly one bad row and no clean row
depends on it: a pipeline that quarantines exactly the injected rows is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

DUPLICATE = "duplicate"
NULL_REQUIRED = "null_required"
UNKNOWN_CUSTOMER = "unknown_customer"
NEGATIVE_AMOUNT = "negative_amount"
NON_NUMERIC_AMOUNT = "non_numeric_amount"
DATE_OUTSIDE = "date_outside"
MALFORMED_LINE = "malformed_line"


@dataclass(frozen=True)
class Target:
    """Which columns of an extract each kind of defect may hit."""

    null_columns: tuple[str, ...]
    amount_columns: tuple[str, ...]
    date_column: str
    unknown_customer: bool


TARGETS: dict[str, Target] = {
    "customers": Target(
        ("registered_on", "status", "kyc_level", "city_tier"),
        ("declared_monthly_income",),
        "registered_on",
        False,
    ),
    "behaviour": Target(
        ("customer_id", "business_date", "app_sessions", "wallet_balance"),
        ("payments_amount", "wallet_balance", "transfers_in_amount"),
        "business_date",
        True,
    ),
    "transactions": Target(
        ("customer_id", "txn_ts", "txn_type", "amount", "channel", "status"),
        ("amount",),
        "txn_ts",
        True,
    ),
}

KEYS = {
    "customers": ("customer_id",),
    "behaviour": ("customer_id", "business_date"),
    "transactions": ("txn_id",),
}


def kinds_for(extract: str, fmt: str) -> list[str]:
    t = TARGETS[extract]
    kinds = [DUPLICATE, NULL_REQUIRED, NEGATIVE_AMOUNT, DATE_OUTSIDE]
    if t.unknown_customer:
        kinds.append(UNKNOWN_CUSTOMER)
    if fmt == "csv":
        kinds += [NON_NUMERIC_AMOUNT, MALFORMED_LINE]
    return kinds


def inject(
    df: pl.DataFrame,
    extract: str,
    fmt: str,
    rate: float,
    protected: np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, list[tuple[int, str, str | None]]]:
    """Damage about ``rate`` of the unprotected rows of a frame in internal form.

    Returns the damaged frame (duplicates inserted after their original) and, per defect,
    (0-based row in the returned frame, kind, column). Text-only defects (non-numeric
    amounts, malformed lines) are returned for the CSV stage to apply; the frame keeps
    its types.
    """
    if extract not in TARGETS or df.height == 0 or rate <= 0:
        return df, []
    t = TARGETS[extract]
    eligible = np.ones(df.height, dtype=bool) if protected is None else ~protected
    hit = eligible & (rng.random(df.height) < rate)
    rows = np.flatnonzero(hit)
    kinds = kinds_for(extract, fmt)
    chosen = rng.choice(kinds, size=len(rows))
    columns: list[str | None] = []
    df = df.clone()
    for row, kind in zip(rows, chosen, strict=True):
        col: str | None = None
        if kind == NULL_REQUIRED:
            col = str(rng.choice(t.null_columns))
            df = _scatter(df, col, int(row), None)
        elif kind == UNKNOWN_CUSTOMER:
            col = "customer_id"
            df = _scatter(df, col, int(row), f"C{900_000_000 + int(rng.integers(0, 99_999_999))}")
        elif kind in (NEGATIVE_AMOUNT, NON_NUMERIC_AMOUNT):
            col = str(rng.choice(t.amount_columns))
            value = df[col][int(row)]
            if kind == NEGATIVE_AMOUNT:
                df = _scatter(df, col, int(row), -abs(value or 0) - 100)
            elif value is None:  # the text stage needs a value to garble
                df = _scatter(df, col, int(row), 1234)
        elif kind == DATE_OUTSIDE:
            col = t.date_column
            value = df[col][int(row)]
            if col == "txn_ts":  # a day in the future, or later than the allowed lag
                shift = 86400 if rng.random() < 0.5 else -86400 * int(rng.integers(5, 12))
                df = _scatter(df, col, int(row), value + shift)
            else:
                shift_days = int(
                    rng.choice([-3, -1, 1, 2]) if col == "business_date" else rng.integers(1, 30)
                )
                df = _scatter(df, col, int(row), value + timedelta(days=shift_days))
        columns.append(col)
    # duplicates: an exact copy right after the original
    is_dup = np.zeros(df.height, dtype=np.int64)
    is_dup[rows[chosen == DUPLICATE]] = 1
    out = df[np.repeat(np.arange(df.height), 1 + is_dup)] if is_dup.any() else df
    position = np.arange(df.height) + np.cumsum(is_dup) - is_dup  # where each original row lands
    injected = [
        (int(position[row]) + (kind == DUPLICATE), str(kind), col)
        for row, kind, col in zip(rows, chosen, columns, strict=True)
    ]
    return out, injected


def _scatter(df: pl.DataFrame, col: str, row: int, value: object) -> pl.DataFrame:
    s = df[col].clone()
    s = s.scatter(row, value)
    return df.with_columns(s.alias(col))


def garble_text(
    text_df: pl.DataFrame, defects: list[tuple[int, str, str | None]], rng: np.random.Generator
) -> pl.DataFrame:
    """Make amounts non-numeric in the text form of a frame (CSV only)."""
    for row, kind, col in defects:
        if kind == NON_NUMERIC_AMOUNT and col is not None:
            value = text_df[col][row] or "12.34"
            bad = str(
                rng.choice(
                    [
                        value.replace("0", "O").replace("1", "l") + "O",
                        "N/A",
                        value.replace(".", ",") + "x",
                    ]
                )
            )
            text_df = _scatter(text_df, col, row, bad)
    return text_df


def break_lines(csv_text: bytes, defects: list[tuple[int, str, str | None]]) -> bytes:
    """Give malformed-line defects an extra field, the commonest broken-export symptom."""
    rows = {row for row, kind, _ in defects if kind == MALFORMED_LINE}
    if not rows:
        return csv_text
    lines = csv_text.split(b"\n")
    for row in rows:
        lines[row + 1] += b',"unexpected"'
    return b"\n".join(lines)

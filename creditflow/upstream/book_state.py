"""The synthetic book's state and its building blocks: configuration, the day's output,
growable column arrays, id formats and schedule arithmetic (shared by the simulation's parts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from creditflow.contract import BUSINESS_UTC_OFFSET_S, CHANNELS, OCCUPATIONS, TXN_TYPES

EPOCH = date(1970, 1, 1)
SHANGHAI_OFFSET_S = BUSINESS_UTC_OFFSET_S
_INST_KEY = 1 << 36  # > any loan's total schedule in fen; packs (loan, cumulative due) into one key

STATUS_ACTIVE, STATUS_BLOCKED, STATUS_CLOSED = 0, 1, 2
STATUSES = ("ACTIVE", "BLOCKED", "CLOSED")
TXN = {name: i for i, name in enumerate(TXN_TYPES)}
CHANNEL = {name: i for i, name in enumerate(CHANNELS)}
OCC = {name: i for i, name in enumerate(OCCUPATIONS)}
MERCHANT_CATEGORIES = (
    "GROCERY",
    "DINING",
    "TRANSPORT",
    "ONLINE_RETAIL",
    "TELECOM",
    "ENTERTAINMENT",
    "HEALTH",
    "EDUCATION",
    "TRAVEL",
    "UTILITIES",
)
_MCC_P = np.array([0.22, 0.2, 0.1, 0.2, 0.05, 0.07, 0.04, 0.03, 0.04, 0.05])
LATE_SHARE = 0.004  # share of ordinary transactions the feed delivers one to three days late


def day_number(d: date) -> int:
    return (d - EPOCH).days


def from_day_number(n: int) -> date:
    return EPOCH + timedelta(days=int(n))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int
    days: int
    start: date
    seed: int = 42
    growth: float = 0.0006  # daily new registrations as a share of the starting base


@dataclass
class DayOutput:
    business_date: date
    frames: dict[str, pl.DataFrame]
    dependent: dict[str, np.ndarray]  # rows other rows refer to; defects must spare them


class _Columns:
    """Growable struct-of-arrays: appends amortise by doubling, indices stay stable."""

    def __init__(self, spec: dict[str, tuple[type, object]], capacity: int) -> None:
        self.n = 0
        self._spec = spec
        self.a: dict[str, np.ndarray] = {
            k: np.full(capacity, fill, dtype=dt) for k, (dt, fill) in spec.items()
        }

    def append(self, values: dict[str, np.ndarray]) -> np.ndarray:
        k = len(next(iter(values.values())))
        need = self.n + k
        cap = len(next(iter(self.a.values())))
        if need > cap:
            new_cap = max(need, 2 * cap)
            for name, (dt, fill) in self._spec.items():
                grown = np.full(new_cap, fill, dtype=dt)
                grown[: self.n] = self.a[name][: self.n]
                self.a[name] = grown
        for name, v in values.items():
            self.a[name][self.n : need] = v
        idx = np.arange(self.n, need)
        self.n = need
        return idx

    def keep(self, mask: np.ndarray) -> np.ndarray:
        """Drop rows where ``mask`` is false; returns the old index of each kept row."""
        old = np.flatnonzero(mask)
        for name in self.a:
            kept = self.a[name][old]
            self.a[name][: len(old)] = kept
        self.n = len(old)
        return old

    def __getitem__(self, name: str) -> np.ndarray:
        return self.a[name][: self.n]


_CUSTOMER_SPEC: dict[str, tuple[type, object]] = {
    "reg_day": (np.int32, 0),
    "reg_sec": (np.int32, 0),
    "birth_year": (np.int32, 0),
    "gender": (np.int8, 0),
    "tier": (np.int8, 0),
    "occ": (np.int8, 0),
    "kyc": (np.int8, 0),
    "income": (np.float64, 0.0),  # true monthly income, CNY; hidden
    "declared": (np.int64, -1),  # declared monthly income, fen; -1 = not declared
    "status": (np.int8, 0),
    "z": (np.float64, 0.0),  # hidden latent risk
    "risk": (np.float64, 0.0),  # hidden total risk (latent plus attributes)
    "p_act": (np.float64, 0.0),
    "lam_pay": (np.float64, 0.0),
    "payday": (np.int8, 0),
    "borrow_rate": (np.float64, 0.0),
    "auto_debit": (np.bool_, False),
    "early_payer": (np.bool_, False),
    "wallet": (np.int64, 0),
    "wallet_target": (np.float64, 0.0),  # fen
    "night_base": (np.float64, 0.0),
    "device_base": (np.float64, 0.0),
    "hardship_until": (np.int32, -1),
    "open_loans": (np.int16, 0),
}

_LOAN_SPEC: dict[str, tuple[type, object]] = {
    "code": (np.int64, 0),  # yyyymmdd * 10**7 + sequence of the day
    "cust": (np.int64, 0),
    "inst_off": (np.int64, 0),
    "n_inst": (np.int32, 0),
    "n_due": (np.int32, 0),
    "total": (np.int64, 0),
    "paid": (np.int64, 0),  # net of reversals, fen
    "rev_day": (np.int32, -1),  # day a bounced auto-debit will be reversed
    "rev_amount": (np.int64, 0),
    "rev_txn": (np.int64, 0),
}

_INST_SPEC: dict[str, tuple[type, object]] = {
    "loan": (np.int64, 0),  # row of the loan in the loan arrays
    "due_day": (np.int32, 0),
    "cum": (np.int64, 0),  # cumulative schedule amount up to and including this line
}


def loan_id(code: np.ndarray) -> pl.Series:
    return "L" + pl.Series(np.asarray(code, dtype=np.int64)).cast(pl.String).str.zfill(15)


def _ymd(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _customer_ids(idx: np.ndarray) -> pl.Series:
    return "C" + pl.Series(np.asarray(idx, dtype=np.int64)).cast(pl.String).str.zfill(9)


def _txn_ids(codes: np.ndarray) -> pl.Series:
    return "T" + pl.Series(np.asarray(codes, dtype=np.int64)).cast(pl.String)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + c)`` for each pair, without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(total) - run_start)


def _schedule(
    principal: int, rate_micro: int, term: int, bullet: bool
) -> tuple[list[int], list[int]]:
    """Principal and interest per instalment in fen; principal lines sum exactly to ``principal``.

    Equal instalments are the French annuity at the monthly rate; bullet loans pay interest
    monthly and the principal at the end. Interest is rounded half-up to the fen each month.
    """
    monthly = rate_micro / 12_000_000
    interest_line = lambda bal: (bal * rate_micro * 2 + 12_000_000) // 24_000_000  # noqa: E731
    if bullet:
        return [0] * (term - 1) + [principal], [interest_line(principal)] * term
    payment = (
        round(principal * monthly / (1 - (1 + monthly) ** -term))
        if monthly
        else -(-principal // term)
    )
    prin, intr, balance = [], [], principal
    for m in range(term):
        i = interest_line(balance)
        p = balance if m == term - 1 else min(balance, max(0, payment - i))
        prin.append(p)
        intr.append(i)
        balance -= p
    return prin, intr

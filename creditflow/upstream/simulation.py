"""A synthetic micro-lending book, simulated one business date at a time.

Each customer carries a hidden risk that drives both app behaviour and repayment, with
noise, so behaviour predicts default only partly. Hardship shocks hit customers for a
while and show up in both. Loans amortise correctly; repayments are applied the way the
contract's ledger applies them (oldest instalment first, interest before principal), so
the simulator's own idea of "overdue" is the same as the pipeline's.

State is held in numpy arrays and updated in place; closed loans are compacted away, so
memory depends on the size of the book, not on the number of days simulated.

Internal representation of the frames returned per day (the writer turns them into
contract types): money in integer fen (cents), rates in millionths, timestamps as UTC
epoch seconds, dates as ``pl.Date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from creditflow.contract import CHANNELS, GENDERS, OCCUPATIONS, PRODUCTS, TXN_TYPES
from creditflow.upstream.calendar import PAYDAYS, add_months, day_profile, is_payday

EPOCH = date(1970, 1, 1)
SHANGHAI_OFFSET_S = 8 * 3600  # Asia/Shanghai has had no daylight saving since 1991
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


class Portfolio:
    """The simulated book; ``step(i)`` advances it by one business date and returns the extracts."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.start_day = day_number(cfg.start)
        cap = int(cfg.customers * (1 + cfg.growth * cfg.days * 1.3)) + 64
        self.cust = _Columns(_CUSTOMER_SPEC, cap)
        self.loans = _Columns(_LOAN_SPEC, max(64, cfg.customers // 4))
        self.inst = _Columns(_INST_SPEC, max(256, cfg.customers))
        self.late_queue: dict[int, list[pl.DataFrame]] = {}
        self.stats = {"loans": 0, "customers": 0}

    # ------------------------------------------------------------------ customers
    def _new_customers(
        self, rng: np.random.Generator, k: int, today: int, base: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        year = from_day_number(today).year
        young = rng.random(k) < 0.88
        age = np.where(
            young,
            np.clip(rng.normal(31.0, 7.0, k), 18, 70),
            rng.uniform(15.0, 78.0, k),
        ).astype(np.int32)
        occ = rng.choice(len(OCCUPATIONS), size=k, p=[0.46, 0.14, 0.11, 0.10, 0.04, 0.04, 0.11])
        u = rng.random(k)
        occ = np.where((age < 23) & (u < 0.35), OCC["STUDENT"], occ)
        occ = np.where((age >= 58) & (u < 0.5), OCC["RETIRED"], occ)
        occ = np.where((occ == OCC["STUDENT"]) & (age > 30), OCC["OTHER"], occ)
        tier = rng.choice(5, size=k, p=[0.12, 0.20, 0.28, 0.25, 0.15]) + 1
        kyc = rng.choice(3, size=k, p=[0.15, 0.50, 0.35]) + 1
        z = rng.normal(0.0, 1.0, k)
        tier_eff = np.array([0.0, 0.45, 0.25, 0.0, -0.2, -0.35])[tier]
        occ_eff = np.array([0.0, 0.15, 0.3, -0.05, -1.2, -0.4, -0.15])[occ]
        log_income = np.log(6000.0) + tier_eff + occ_eff - 0.15 * z + rng.normal(0.0, 0.5, k)
        income = np.exp(log_income)
        shown_p = np.array([0.0, 0.35, 0.65, 0.85])[kyc]
        shown = rng.random(k) < shown_p
        declared = np.round(income * np.exp(rng.normal(0.05, 0.15, k)) / 100.0) * 100.0
        declared_fen = np.where(shown, (declared * 100).astype(np.int64), -1)
        rel_income = log_income - np.log(6000.0)
        risk = (
            0.85 * z
            + 0.35 * (age < 23)
            + 0.25 * (kyc == 1)
            + 0.2 * np.isin(occ, [OCC["FREELANCER"], OCC["OTHER"]])
            + 0.25 * (occ == OCC["STUDENT"])
            - 0.25 * rel_income
            + 0.1 * (tier >= 4)
        )
        if base:
            reg_day = today - rng.integers(1, 1500, k)
            status = rng.choice(3, size=k, p=[0.975, 0.015, 0.01])
        else:
            reg_day = np.full(k, today)
            status = np.zeros(k, dtype=np.int8)
        salaried = occ == OCC["SALARIED"]
        payday = np.where(
            salaried | (rng.random(k) < 0.2), rng.choice(np.array(PAYDAYS), size=k), 0
        )
        borrower = rng.random(k) < _sigmoid(-0.5 + 0.6 * z)
        borrow_rate = np.where(borrower, 1.0 / rng.uniform(25.0, 150.0, k), 0.0)
        wallet_target = income * 100.0 * np.exp(rng.normal(-0.4 - 0.35 * z, 0.6))
        values = {
            "reg_day": reg_day,
            "reg_sec": rng.integers(7 * 3600, 23 * 3600, k),
            "birth_year": year - age,
            "gender": rng.choice(3, size=k, p=[0.52, 0.46, 0.02]),
            "tier": tier,
            "occ": occ,
            "kyc": kyc,
            "income": income,
            "declared": declared_fen,
            "status": status,
            "z": z,
            "risk": risk,
            "p_act": rng.beta(1.3, 2.0, k),
            "lam_pay": rng.gamma(2.0, 0.55, k) * np.exp(0.2 * rel_income),
            "payday": payday,
            "borrow_rate": borrow_rate,
            "auto_debit": rng.random(k) < 0.55,
            "early_payer": rng.random(k) < 0.5 * _sigmoid(0.2 - 1.0 * z),
            "wallet": (wallet_target * rng.uniform(0.5, 1.5, k)).astype(np.int64),
            "wallet_target": wallet_target,
            "night_base": _sigmoid(-2.0 + 0.3 * z + rng.normal(0.0, 0.6, k)),
            "device_base": 0.002 * np.exp(0.5 * z),
            "hardship_until": np.full(k, -1),
            "open_loans": np.zeros(k),
        }
        idx = self.cust.append(values)
        # updated_at of a new record is its registration time
        return idx, reg_day * 86400 + values["reg_sec"]

    def _customer_changes(
        self, rng: np.random.Generator, today: int, cust_dpd: np.ndarray
    ) -> np.ndarray:
        c = self.cust
        n = c.n
        status, kyc = c["status"], c["kyc"]
        u = rng.random((5, n))
        active = status == STATUS_ACTIVE
        registered = c["reg_day"] < today
        block = (
            active
            & registered
            & (u[0] < 0.00004 * np.exp(0.8 * c["risk"]) + 0.03 * (cust_dpd > 90))
        )
        unblock = (status == STATUS_BLOCKED) & (u[0] < 0.01) & (cust_dpd == 0)
        close = active & registered & (c["open_loans"] == 0) & (u[1] < 0.00008)
        kyc_up = registered & (kyc < 3) & (u[2] < 0.0008)
        income_upd = registered & (u[3] < 0.0005)
        move = registered & (u[4] < 0.0002)
        status[block] = STATUS_BLOCKED
        status[unblock] = STATUS_ACTIVE
        status[close] = STATUS_CLOSED
        kyc[kyc_up] += 1
        k = int(income_upd.sum())
        if k:
            inc = c["income"][income_upd] * np.exp(rng.normal(0.03, 0.1, k))
            c["income"][income_upd] = inc
            c["declared"][income_upd] = (np.round(inc / 100.0) * 10000).astype(np.int64)
        k = int(move.sum())
        if k:
            c["tier"][move] = np.clip(c["tier"][move] + rng.choice([-1, 1], size=k), 1, 5)
        return np.flatnonzero(block | unblock | close | kyc_up | income_upd | move)

    def _customers_frame(self, idx: np.ndarray, updated_s: np.ndarray) -> pl.DataFrame:
        c = self.cust
        order = np.argsort(idx, kind="stable")
        idx, updated_s = idx[order], updated_s[order]
        declared = c["declared"][idx]
        return pl.DataFrame(
            {
                "customer_id": _customer_ids(idx),
                "registered_on": c["reg_day"][idx].astype("datetime64[D]"),
                "birth_year": c["birth_year"][idx],
                "gender": np.array(GENDERS)[c["gender"][idx]],
                "city_tier": c["tier"][idx].astype(np.int32),
                "occupation": np.array(OCCUPATIONS)[c["occ"][idx]],
                "kyc_level": c["kyc"][idx].astype(np.int32),
                "declared_monthly_income": pl.Series(declared).set(pl.Series(declared < 0), None),
                "status": np.array(STATUSES)[c["status"][idx]],
                "updated_at": updated_s - SHANGHAI_OFFSET_S,
            }
        ).with_columns(pl.col("registered_on").cast(pl.Date))

    # ------------------------------------------------------------------ loans
    def _originate(
        self, rng: np.random.Generator, today: int, d: date, borrowers: np.ndarray
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, np.ndarray]]:
        c = self.cust
        k = len(borrowers)
        occ = c["occ"][borrowers]
        rel_income = np.log(c["income"][borrowers] / 6000.0)
        merchantish = np.isin(occ, [OCC["MERCHANT"], OCC["SELF_EMPLOYED"]])
        merchant = merchantish & (rng.random(k) < 0.6)
        cash_amt = np.exp(np.log(2500.0) + 0.5 * rel_income + rng.normal(0.0, 0.7, k))
        merch_amt = np.exp(np.log(12000.0) + 0.4 * rel_income + rng.normal(0.0, 0.7, k))
        principal_cny = np.where(
            merchant, np.clip(merch_amt, 2000, 200000), np.clip(cash_amt, 500, 50000)
        )
        principal = (np.round(principal_cny / 100.0) * 10000).astype(np.int64)
        term = np.where(
            merchant,
            rng.choice([3, 6, 12, 24, 36], size=k, p=[0.15, 0.3, 0.35, 0.15, 0.05]),
            rng.choice([1, 3, 6, 12], size=k, p=[0.25, 0.3, 0.25, 0.2]),
        )
        bullet = (
            (term == 1)
            | ((term <= 3) & (rng.random(k) < 0.2))
            | (merchant & (term <= 12) & (rng.random(k) < 0.15))
        )
        observed_risk = 0.6 * c["risk"][borrowers] + rng.normal(0.0, 0.5, k)
        rate = np.clip(0.12 + 0.035 * observed_risk + rng.normal(0.0, 0.015, k), 0.072, 0.24)
        rate_micro = (np.round(rate * 10000) * 100).astype(np.int64)
        orig_sec = rng.integers(8 * 3600, 23 * 3600, k)
        seq0 = self.stats["loans"]
        codes = _ymd(d) * 10**7 + np.arange(1, k + 1)
        self.stats["loans"] = seq0 + k

        inst_local, inst_no, inst_due, inst_prin, inst_int = [], [], [], [], []
        totals = np.zeros(k, dtype=np.int64)
        offsets = np.zeros(k, dtype=np.int64)
        loan_rows = self.loans.n + np.arange(k)
        cum_all: list[int] = []
        for j in range(k):
            prin_lines, int_lines = _schedule(
                int(principal[j]), int(rate_micro[j]), int(term[j]), bool(bullet[j])
            )
            offsets[j] = self.inst.n + len(inst_due)
            running = 0
            for m, (p, i) in enumerate(zip(prin_lines, int_lines, strict=True), start=1):
                inst_local.append(j)
                inst_no.append(m)
                inst_due.append(day_number(add_months(d, m)))
                inst_prin.append(p)
                inst_int.append(i)
                running += p + i
                cum_all.append(running)
            totals[j] = running
        self.inst.append(
            {
                "loan": loan_rows[np.array(inst_local, dtype=np.int64)],
                "due_day": np.array(inst_due, dtype=np.int32),
                "cum": np.array(cum_all, dtype=np.int64),
            }
        )
        self.loans.append(
            {
                "code": codes,
                "cust": borrowers,
                "inst_off": offsets,
                "n_inst": term,
                "n_due": np.zeros(k),
                "total": totals,
                "paid": np.zeros(k),
                "rev_day": np.full(k, -1),
                "rev_amount": np.zeros(k),
                "rev_txn": np.zeros(k),
            }
        )
        c["open_loans"][borrowers] += 1
        ids = loan_id(codes)
        loans_df = pl.DataFrame(
            {
                "loan_id": ids,
                "customer_id": _customer_ids(borrowers),
                "originated_at": today * 86400 + orig_sec - SHANGHAI_OFFSET_S,
                "product": np.array(PRODUCTS)[merchant.astype(int)],
                "principal": principal,
                "term_months": term.astype(np.int32),
                "annual_rate": rate_micro,
                "repayment_method": np.where(bullet, "BULLET", "EQUAL_INSTALLMENT"),
            }
        )
        inst_df = pl.DataFrame(
            {
                "loan_id": ids[np.array(inst_local, dtype=np.int64)],
                "installment_no": np.array(inst_no, dtype=np.int32),
                "due_date": np.array(inst_due, dtype="datetime64[D]"),
                "principal_due": np.array(inst_prin, dtype=np.int64),
                "interest_due": np.array(inst_int, dtype=np.int64),
            }
        ).with_columns(pl.col("due_date").cast(pl.Date))
        drawdowns = {
            "cust": borrowers,
            "loan": codes,
            "sec": orig_sec + 60,
            "type": np.full(k, TXN["DRAWDOWN"]),
            "amount": principal,
            "channel": np.full(k, CHANNEL["APP"]),
            "mcc": np.full(k, -1),
            "status": np.zeros(k, dtype=np.int8),
            "rev": np.full(k, -1),
        }
        return loans_df, inst_df, drawdowns

    def _repayments(
        self,
        rng: np.random.Generator,
        today: int,
        d: date,
        risk_eff: np.ndarray,
        cust_u: np.ndarray,
    ) -> tuple[list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
        """Decide today's repayment events; returns txn parts, bounce loan rows and their part index."""
        lo, ins, c = self.loans, self.inst, self.cust
        n = lo.n
        if n == 0:
            return [], np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        loan_rows = np.arange(n)
        off, ni = lo["inst_off"], lo["n_inst"]
        nd = lo["n_due"]
        has_next = nd < ni
        nxt = off + np.minimum(nd, ni - 1)
        falls_due = has_next & (ins["due_day"][nxt] == today)
        nd += falls_due
        cum = ins["cum"]
        cum_le = np.where(nd > 0, cum[off + np.maximum(nd, 1) - 1], 0)
        cum_lt = np.where(falls_due, np.where(nd > 1, cum[off + np.maximum(nd, 2) - 2], 0), cum_le)
        paid = lo["paid"]
        owed = cum_le - paid
        overdue = cum_lt - paid
        dpd = self.loan_dpd(today)

        cu = lo["cust"]
        r = risk_eff[cu]
        u = cust_u[cu]
        v = rng.random((6, n))
        pay_day = np.array([is_payday(d, int(p)) if p else False for p in range(32)])
        on_payday = pay_day[c["payday"][cu]]
        pending = lo["rev_day"] >= 0

        amount = np.zeros(n, dtype=np.int64)
        channel = np.full(n, CHANNEL["APP"])
        failed = np.zeros(n, dtype=bool)

        current = overdue <= 0
        due_now = current & falls_due & (owed > 0)
        p_pay = _sigmoid(3.6 - 1.3 * r)
        pays = due_now & (u < p_pay)
        auto = c["auto_debit"][cu]
        amount[pays] = owed[pays]
        partial = pays & (v[0] < 0.03)
        amount[partial] = np.maximum(
            100, (owed[partial] * rng.uniform(0.3, 0.9, partial.sum())).astype(np.int64)
        )
        overpay = pays & ~partial & (v[0] > 0.99)
        amount[overpay] += rng.integers(100, 5000, overpay.sum())
        channel[due_now & auto] = CHANNEL["AUTO_DEBIT"]
        manual = due_now & ~auto
        channel[manual] = rng.choice(
            [CHANNEL["APP"], CHANNEL["MINI_PROGRAM"], CHANNEL["BANK_CARD"]],
            size=manual.sum(),
            p=[0.6, 0.3, 0.1],
        )
        failed_auto = due_now & auto & ~pays
        amount[failed_auto] = owed[failed_auto]
        failed |= failed_auto
        bounce = pays & auto & ~pending & (v[1] < 0.03 * np.exp(0.5 * np.clip(r, -2, 4)))

        # early payers settle the next instalment one to three days before it falls due
        days_to_next = np.where(has_next & ~falls_due, ins["due_day"][nxt] - today, 99)
        next_cum = cum[nxt]
        early = (
            current
            & ~falls_due
            & (days_to_next <= 3)
            & c["early_payer"][cu]
            & (v[2] < 0.3)
            & (next_cum > paid)
        )
        amount[early] = next_cum[early] - paid[early]
        # prepayment: the whole remaining schedule, or a round partial amount
        quiet = current & ~falls_due & ~early & (paid < lo["total"])
        full_pre = quiet & (v[3] < 0.0012 * (r < 0.5))
        amount[full_pre] = lo["total"][full_pre] - paid[full_pre]
        part_pre = quiet & ~full_pre & (v[3] > 1 - 0.0008)
        amount[part_pre] = np.minimum(
            lo["total"][part_pre] - paid[part_pre], rng.integers(5, 30, part_pre.sum()) * 10000
        )

        # delinquent loans cure (in full or in part) with a hazard that falls with dpd
        late = ~current
        written_off = late & (dpd > 180)
        p_cure = _sigmoid(-0.3 - 0.9 * r - dpd / 25.0) * np.where(on_payday, 2.0, 1.0)
        cures = late & ~written_off & (u < p_cure)
        recov = written_off & (v[5] < 0.004)
        full = cures & (v[0] < 0.7)
        amount[full] = owed[full]
        part = (cures & ~full) | recov
        amount[part] = np.maximum(
            100, (np.maximum(owed[part], 100) * rng.uniform(0.2, 0.8, part.sum())).astype(np.int64)
        )
        channel[late] = rng.choice(
            [CHANNEL["APP"], CHANNEL["MINI_PROGRAM"], CHANNEL["BANK_CARD"]],
            size=late.sum(),
            p=[0.6, 0.3, 0.1],
        )
        retry = late & ~written_off & ~cures & auto & (v[1] < 0.1)
        amount[retry] = np.maximum(owed[retry], 100)
        channel[retry] = CHANNEL["AUTO_DEBIT"]
        failed |= retry

        event = (amount > 0) & (pays | failed | early | full_pre | part_pre | cures | recov)
        rows = loan_rows[event]
        ok = ~failed[rows]
        paid[rows[ok]] += amount[rows[ok]]
        secs = np.where(
            channel[rows] == CHANNEL["AUTO_DEBIT"],
            rng.integers(2 * 3600, 6 * 3600, len(rows)),
            rng.integers(8 * 3600, 23 * 3600, len(rows)),
        )
        part_rep = {
            "cust": cu[rows],
            "loan": lo["code"][rows],
            "sec": secs,
            "type": np.full(len(rows), TXN["REPAYMENT"]),
            "amount": amount[rows],
            "channel": channel[rows],
            "mcc": np.full(len(rows), -1),
            "status": failed[rows].astype(np.int8),
            "rev": np.full(len(rows), -1),
        }
        bounce_rows = np.flatnonzero(bounce[rows])
        return [part_rep], rows[bounce_rows], bounce_rows

    def loan_dpd(self, today: int) -> np.ndarray:
        """Days past due of every open loan at ``today`` (before today's payments)."""
        lo, ins = self.loans, self.inst
        if lo.n == 0:
            return np.zeros(0, dtype=np.int64)
        key = ins["loan"] * _INST_KEY + ins["cum"]
        rows = np.arange(lo.n)
        pos = np.searchsorted(key, rows * _INST_KEY + lo["paid"], side="right")
        end = lo["inst_off"] + lo["n_inst"]
        unpaid = pos < end
        due = ins["due_day"][np.minimum(pos, ins.n - 1)]
        return np.where(unpaid & (due < today), today - due, 0)

    def _compact(self, today: int) -> None:
        """Forget loans that can have no more events: repaid in full, or written off long ago."""
        lo = self.loans
        if lo.n == 0:
            return
        dpd = self.loan_dpd(today)
        done = ((lo["paid"] >= lo["total"]) & (lo["rev_day"] < 0)) | (dpd > 400)
        if not done.any():
            return
        np.subtract.at(self.cust["open_loans"], lo["cust"][done], 1)
        old_off, old_n = lo["inst_off"].copy(), lo["n_inst"].copy()
        kept = lo.keep(~done)
        # rebuild the instalment arrays for the kept loans, in loan order
        sel = _ranges(old_off[kept], old_n[kept].astype(np.int64))
        new_loan_of_inst = np.repeat(np.arange(len(kept)), old_n[kept])
        due, cum = self.inst["due_day"][sel], self.inst["cum"][sel]
        self.inst.n = 0
        self.inst.append({"loan": new_loan_of_inst, "due_day": due, "cum": cum})
        lo["inst_off"][:] = np.cumsum(old_n[kept]) - old_n[kept]

    # ------------------------------------------------------------------ one day
    def step(self, day_index: int) -> DayOutput:
        cfg = self.cfg
        today = self.start_day + day_index
        d = from_day_number(today)
        prof = day_profile(d)
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, day_index]))
        ymd = _ymd(d)

        # 1. registrations: the whole base on the first day, then a daily trickle
        if day_index == 0:
            new_idx, new_upd = self._new_customers(rng, cfg.customers, today, base=True)
        else:
            k = int(rng.poisson(cfg.customers * cfg.growth * prof.activity))
            new_idx, new_upd = self._new_customers(rng, k, today, base=False)
        c = self.cust
        n = c.n

        # 2. customer-level state for the day
        lo = self.loans
        dpd_loans = self.loan_dpd(today)
        cust_dpd = np.zeros(n, dtype=np.int64)
        if lo.n:
            np.maximum.at(cust_dpd, lo["cust"], dpd_loans)
        changed = (
            self._customer_changes(rng, today, cust_dpd)
            if day_index
            else np.zeros(0, dtype=np.int64)
        )
        changed = np.setdiff1d(changed, new_idx)
        chg_upd = today * 86400 + rng.integers(6 * 3600, 23 * 3600, len(changed))
        customers_df = self._customers_frame(
            np.concatenate([new_idx, changed]), np.concatenate([new_upd, chg_upd])
        )

        z, status = c["z"], c["status"]
        open_ = status != STATUS_CLOSED
        hu = c["hardship_until"]
        shock = open_ & (hu < today) & (rng.random(n) < 0.0006 * np.exp(0.7 * c["risk"]))
        hu[shock] = today + rng.integers(20, 150, shock.sum())
        hs = (hu >= today).astype(np.float64)
        risk_eff = c["risk"] + 2.3 * hs + prof.repayment_risk_shift
        cust_u = rng.random(n)

        # 3. app activity and ordinary money movement
        pay_day = np.array([is_payday(d, int(p)) if p else False for p in range(32)])
        salary_today = open_ & pay_day[c["payday"]]
        p_act = c["p_act"] * prof.activity * (1 + 0.3 * hs) + 0.3 * salary_today
        active = open_ & (rng.random(n) < p_act)
        act = np.flatnonzero(active)
        a = len(act)
        income_fen = c["income"] * 100.0

        n_purch = rng.poisson(c["lam_pay"][act] * prof.spending * (1 - 0.2 * hs[act]))
        n_tin = rng.poisson(0.25 * (1 + 0.5 * hs[act]))
        n_tout = rng.poisson(0.22 * (1 + 0.5 * _sigmoid(z[act])) * (1 + 0.8 * hs[act]))
        parts: list[dict[str, np.ndarray]] = []

        def movement(
            counts: np.ndarray,
            typ: str,
            log_median: np.ndarray,
            sd: float,
            channels: list[int],
            p: list[float],
            mcc: bool,
        ) -> dict[str, np.ndarray]:
            who = np.repeat(act, counts)
            m = len(who)
            med = np.repeat(log_median, counts)
            amt = np.maximum(100, np.exp(med + rng.normal(0.0, sd, m)).astype(np.int64))
            return {
                "cust": who,
                "loan": np.full(m, -1),
                "sec": rng.integers(0, 86400, m),
                "type": np.full(m, TXN[typ]),
                "amount": amt,
                "channel": rng.choice(channels, size=m, p=p),
                "mcc": rng.choice(len(MERCHANT_CATEGORIES), size=m, p=_MCC_P)
                if mcc
                else np.full(m, -1),
                "status": (rng.random(m) < 0.015).astype(np.int8),
                "rev": np.full(m, -1),
            }

        rel = np.log(c["income"][act] / 6000.0)
        purch = movement(
            n_purch,
            "PURCHASE",
            np.log(4500.0) + 0.35 * rel,
            0.9,
            [CHANNEL["APP"], CHANNEL["MINI_PROGRAM"], CHANNEL["BANK_CARD"]],
            [0.55, 0.35, 0.1],
            True,
        )
        tin = movement(
            n_tin,
            "TRANSFER_IN",
            np.full(a, np.log(20000.0)),
            1.1,
            [CHANNEL["APP"], CHANNEL["BANK_CARD"]],
            [0.8, 0.2],
            False,
        )
        tout = movement(
            n_tout,
            "TRANSFER_OUT",
            np.log(25000.0) + 0.25 * z[act],
            1.1,
            [CHANNEL["APP"], CHANNEL["BANK_CARD"]],
            [0.8, 0.2],
            False,
        )
        parts += [purch, tin, tout]
        # salary arrives whether or not the customer opens the app
        sal = np.flatnonzero(salary_today)
        parts.append(
            {
                "cust": sal,
                "loan": np.full(len(sal), -1),
                "sec": rng.integers(9 * 3600, 18 * 3600, len(sal)),
                "type": np.full(len(sal), TXN["TRANSFER_IN"]),
                "amount": (income_fen[sal] * rng.uniform(0.9, 1.1, len(sal))).astype(np.int64),
                "channel": np.full(len(sal), CHANNEL["BANK_CARD"]),
                "mcc": np.full(len(sal), -1),
                "status": np.zeros(len(sal), dtype=np.int8),
                "rev": np.full(len(sal), -1),
            }
        )
        # refunds of some purchases, and fees on some outgoing transfers
        refund = rng.random(len(purch["cust"])) < 0.02
        fee = rng.random(len(tout["cust"])) < 0.05
        parts.append(
            {
                **{k: v[refund] for k, v in purch.items()},
                "type": np.full(refund.sum(), TXN["REFUND"]),
                "status": np.zeros(refund.sum(), dtype=np.int8),
                "mcc": purch["mcc"][refund],
            }
        )
        parts.append(
            {
                **{k: v[fee] for k, v in tout.items()},
                "type": np.full(fee.sum(), TXN["FEE"]),
                "amount": np.maximum(1, tout["amount"][fee] // 1000),
                "status": np.zeros(fee.sum(), dtype=np.int8),
            }
        )

        # 4. loans: new contracts, then repayments and reversals of earlier ones
        age = d.year - c["birth_year"]
        eligible = (
            (status == STATUS_ACTIVE)
            & (c["reg_day"] < today)
            & (c["kyc"] >= 2)
            & (age >= 18)
            & (age <= 65)
            & (c["occ"] != OCC["STUDENT"])
            & (c["open_loans"] < 3)
            & (cust_dpd == 0)
        )
        p_borrow = (
            c["borrow_rate"]
            * prof.borrowing
            * (1 + 2.0 * hs)
            * np.where(c["open_loans"] > 0, 0.3, 1.0)
        )
        borrowers = np.flatnonzero(eligible & (rng.random(n) < p_borrow))
        rep_parts, bounce_rows, bounce_idx = self._repayments(rng, today, d, risk_eff, cust_u)
        loans_df, inst_df, draw = self._originate(rng, today, d, borrowers)
        parts.append(draw)

        # reversals of auto-debits that bounced a few days ago
        if lo.n:
            due_rev = np.flatnonzero(lo["rev_day"] == today)
            lo["paid"][due_rev] -= lo["rev_amount"][due_rev]
            parts.append(
                {
                    "cust": lo["cust"][due_rev],
                    "loan": np.full(len(due_rev), -1),
                    "sec": rng.integers(1 * 3600, 6 * 3600, len(due_rev)),
                    "type": np.full(len(due_rev), TXN["REVERSAL"]),
                    "amount": lo["rev_amount"][due_rev],
                    "channel": np.full(len(due_rev), CHANNEL["AUTO_DEBIT"]),
                    "mcc": np.full(len(due_rev), -1),
                    "status": np.zeros(len(due_rev), dtype=np.int8),
                    "rev": lo["rev_txn"][due_rev],
                }
            )
            lo["rev_day"][due_rev] = -1
        rep_start = sum(len(p["cust"]) for p in parts)
        parts += rep_parts

        txn = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.lexsort((txn["type"], txn["cust"], txn["sec"]))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        codes = ymd * 10**8 + rank + 1
        if len(bounce_rows):
            lo["rev_day"][bounce_rows] = today + rng.integers(1, 6, len(bounce_rows))
            lo["rev_amount"][bounce_rows] = txn["amount"][rep_start + bounce_idx]
            lo["rev_txn"][bounce_rows] = codes[rep_start + bounce_idx]

        # 5. wallets: money in, money out, drift back towards the customer's usual level
        ok = txn["status"] == 0
        signed = np.select(
            [
                np.isin(
                    txn["type"],
                    [TXN["TRANSFER_IN"], TXN["REFUND"], TXN["DRAWDOWN"], TXN["REVERSAL"]],
                )
            ],
            [txn["amount"]],
            -txn["amount"],
        )
        flow = np.bincount(txn["cust"][ok], weights=signed[ok], minlength=n)
        target = c["wallet_target"] * np.where(hs > 0, 0.7, 1.0)
        wallet = c["wallet"]
        wallet[:] = np.maximum(
            0, (0.93 * wallet + 0.07 * target + flow * 0.5) * np.exp(rng.normal(0, 0.05 + 0.1 * hs))
        ).astype(np.int64)

        behaviour_df = self._behaviour_frame(rng, d, act, txn, hs, prof)
        txn_df = self._transactions_frame(txn, codes, today)
        self._compact(today)
        txn_df = self._delay_some(rng, txn_df, today)

        dependent = {
            "transactions": txn_df["txn_type"]
            .is_in(["DRAWDOWN", "REPAYMENT", "REVERSAL"])
            .to_numpy(),
            "customers": customers_df["customer_id"]
            .is_in(_customer_ids(new_idx).implode())
            .to_numpy(),
        }
        return DayOutput(
            business_date=d,
            frames={
                "customers": customers_df,
                "behaviour": behaviour_df,
                "loans": loans_df,
                "installments": inst_df,
                "transactions": txn_df,
            },
            dependent=dependent,
        )

    def _behaviour_frame(
        self,
        rng: np.random.Generator,
        d: date,
        act: np.ndarray,
        txn: dict[str, np.ndarray],
        hs: np.ndarray,
        prof: object,
    ) -> pl.DataFrame:
        c = self.cust
        n = c.n
        a = len(act)
        ok = txn["status"] == 0

        def sums(typ: int, count: bool = False) -> np.ndarray:
            m = ok & (txn["type"] == typ)
            w = None if count else txn["amount"][m].astype(np.float64)
            return np.bincount(txn["cust"][m], weights=w, minlength=n)[act].astype(np.int64)

        h = hs[act]
        z = c["z"][act]
        sessions = 1 + rng.poisson(2.2 * (1 + 0.1 * h))
        minutes = rng.gamma(sessions * 1.5, 2.5) * (1 + 0.15 * h)
        m = np.clip(c["night_base"][act] + 0.05 * h, 0.01, 0.95)
        night = rng.beta(8 * m, 8 * (1 - m))
        rp = prof.red_packets  # type: ignore[attr-defined]
        return pl.DataFrame(
            {
                "customer_id": _customer_ids(act),
                "business_date": np.full(a, np.datetime64(d, "D")),
                "app_sessions": sessions.astype(np.int32),
                "app_minutes": np.round(minutes, 2),
                "payments_count": sums(TXN["PURCHASE"], count=True).astype(np.int32),
                "payments_amount": sums(TXN["PURCHASE"]),
                "transfers_in_amount": sums(TXN["TRANSFER_IN"]),
                "transfers_out_amount": sums(TXN["TRANSFER_OUT"]),
                "red_packets_sent": rng.poisson(0.12 * rp * (1 - 0.3 * h)).astype(np.int32),
                "red_packets_received": rng.poisson(0.15 * rp * (1 + 0.6 * h)).astype(np.int32),
                "contacts_added": rng.poisson(0.08 * np.exp(0.2 * z + 0.4 * h)).astype(np.int32),
                "device_changed": rng.random(a) < c["device_base"][act] * (1 + 1.5 * h),
                "night_activity_share": np.round(night, 4),
                "wallet_balance": c["wallet"][act],
            }
        ).with_columns(pl.col("business_date").cast(pl.Date))

    def _transactions_frame(
        self, txn: dict[str, np.ndarray], codes: np.ndarray, today: int
    ) -> pl.DataFrame:
        loan = txn["loan"]
        rev = txn["rev"]
        df = pl.DataFrame(
            {
                "code": codes,
                "txn_id": _txn_ids(codes),
                "customer_id": _customer_ids(txn["cust"]),
                "loan_id": loan_id(np.where(loan >= 0, loan, 0)).set(pl.Series(loan < 0), None),
                "txn_ts": today * 86400 + txn["sec"] - SHANGHAI_OFFSET_S,
                "txn_type": np.array(TXN_TYPES)[txn["type"]],
                "amount": txn["amount"],
                "currency": np.full(len(codes), "CNY"),
                "channel": np.array(CHANNELS)[txn["channel"]],
                "merchant_category": pl.Series(
                    np.array(MERCHANT_CATEGORIES)[np.maximum(txn["mcc"], 0)]
                ).set(pl.Series(txn["mcc"] < 0), None),
                "status": np.where(txn["status"] == 1, "FAILED", "SUCCESS"),
                "reverses_txn_id": _txn_ids(np.where(rev >= 0, rev, 0)).set(
                    pl.Series(rev < 0), None
                ),
            }
        )
        return df.sort("code").drop("code")

    def _delay_some(
        self, rng: np.random.Generator, txn_df: pl.DataFrame, today: int
    ) -> pl.DataFrame:
        """Hold back a few ordinary transactions for one to three days, as a late feed does."""
        ordinary = ~txn_df["txn_type"].is_in(["DRAWDOWN", "REPAYMENT", "REVERSAL"]).to_numpy()
        held = ordinary & (rng.random(txn_df.height) < LATE_SHARE)
        lag = rng.integers(1, 4, txn_df.height)
        for k in (1, 2, 3):
            sel = held & (lag == k)
            if sel.any():
                self.late_queue.setdefault(today + k, []).append(txn_df.filter(pl.Series(sel)))
        out = [txn_df.filter(pl.Series(~held)), *self.late_queue.pop(today, [])]
        return pl.concat(out).sort(["txn_ts", "txn_id"])


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

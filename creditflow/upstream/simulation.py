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

import numpy as np
import polars as pl

from creditflow.upstream.book_state import (
    _CUSTOMER_SPEC,
    _INST_KEY,
    _INST_SPEC,
    _LOAN_SPEC,
    _MCC_P,
    CHANNEL,
    MERCHANT_CATEGORIES,
    OCC,
    SHANGHAI_OFFSET_S,
    STATUS_ACTIVE,
    STATUS_CLOSED,
    TXN,
    DayOutput,
    GeneratorConfig,
    _Columns,
    _customer_ids,
    _ranges,
    _sigmoid,
    _ymd,
    day_number,
    from_day_number,
    loan_id,
)
from creditflow.upstream.calendar import day_profile, is_payday
from creditflow.upstream.customer_base import CustomerBase
from creditflow.upstream.daily_frames import DailyFrames
from creditflow.upstream.lending import Lending

__all__ = [
    "SHANGHAI_OFFSET_S",
    "DayOutput",
    "GeneratorConfig",
    "Portfolio",
    "day_number",
    "from_day_number",
    "loan_id",
]


class Portfolio(CustomerBase, Lending, DailyFrames):
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

"""The simulated loans: origination with its schedule, and repayments applied the way the
contract's ledger applies them (a part of ``simulation.Portfolio``)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from creditflow.contract import PRODUCTS
from creditflow.upstream.book_state import (
    CHANNEL,
    OCC,
    SHANGHAI_OFFSET_S,
    TXN,
    _customer_ids,
    _schedule,
    _sigmoid,
    _ymd,
    day_number,
    loan_id,
)
from creditflow.upstream.calendar import add_months, is_payday


class Lending:
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

"""The day's behaviour and transactions as the frames the writer delivers, with the feed's
late deliveries (a part of ``simulation.Portfolio``)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from creditflow.contract import CHANNELS, TXN_TYPES
from creditflow.upstream.book_state import (
    LATE_SHARE,
    MERCHANT_CATEGORIES,
    SHANGHAI_OFFSET_S,
    TXN,
    _customer_ids,
    _txn_ids,
    loan_id,
)


class DailyFrames:
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

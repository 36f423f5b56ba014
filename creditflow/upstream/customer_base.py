"""The simulated customers: who registers, their hidden risk and attributes, and the
record changes the upstream delivers (a part of ``simulation.Portfolio``)."""

from __future__ import annotations

import numpy as np
import polars as pl

from creditflow.contract import GENDERS, OCCUPATIONS
from creditflow.upstream.book_state import (
    OCC,
    SHANGHAI_OFFSET_S,
    STATUS_ACTIVE,
    STATUS_BLOCKED,
    STATUS_CLOSED,
    STATUSES,
    _customer_ids,
    _sigmoid,
    from_day_number,
)
from creditflow.upstream.calendar import PAYDAYS


class CustomerBase:
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

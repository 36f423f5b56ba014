"""What pricing and notices add to a night, measured inside ``bench_stages stages``.

Pricing runs inside the limits step (``price`` over the night's decisions) and the pricing
summary and the notices after it; none has a bare-engine twin, so the figure is their own
time, to set against the night's: on the 1M-customer book they should add under 10%.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from benchmarks.bench_stages import Figure, timed
from creditflow.policy.config import LimitPolicy
from creditflow.policy.notices import notice_rows, published_notices, store_notices
from creditflow.policy.pricing import PRICING_COLUMNS, price, pricing_summary


def lending(con: Any, d: date, policy: LimitPolicy, decided: pl.DataFrame, run_id: str) -> Figure:
    """Price the decisions again, then build the pricing summary and the notices; both are
    left in temp tables ``bench_pricing_summary`` and ``bench_customer_notices`` for the
    publication figure."""
    unpriced = decided.drop(PRICING_COLUMNS)
    _, price_seconds, price_peak = timed(lambda: price(unpriced, policy))

    def summary_and_notices() -> int:
        pricing_summary(con, d, policy, run_id).create_view("bench_view", replace=True)
        con.execute(
            "create or replace temp table bench_pricing_summary as select * from bench_view"
        )
        rows = notice_rows(con, d, policy, run_id)
        store_notices(con, d, rows, run_id)
        con.register("bench_notices", published_notices(con, d).to_arrow_table())
        con.execute(
            "create or replace temp table bench_customer_notices as select * from bench_notices"
        )
        con.unregister("bench_notices")
        return rows.height

    n, seconds, peak = timed(summary_and_notices)
    return Figure(
        "pricing and notices",
        seconds + price_seconds,
        n,
        max(peak, price_peak),
        detail={"price_seconds": price_seconds, "summary_and_notices_seconds": seconds},
    )

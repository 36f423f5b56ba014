"""Portfolio figures of a generated book, from the delivered files only (tests/oracle.py).

    .venv/bin/python benchmarks/portfolio_figures.py --customers 3000 --days 300 --seed 5

Bad rate: of customers with a balance and below 30 dpd at a month-spaced observation date,
the share reaching dpd >= 30 on one of the next 90 days. NPL ratio: principal of loans more
than 90 dpd over all outstanding principal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: tests.support

from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.oracle import build_daily_dpd, load_landing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--days", type=int, default=300)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 9, 1))
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    cfg = GeneratorConfig(
        customers=args.customers, days=args.days, start=args.start, seed=args.seed
    )
    end = cfg.start + timedelta(days=cfg.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        result = generate(cfg, Path(tmp) / "landing")
        con = load_landing(result.landing)
        build_daily_dpd(con, end.isoformat())
    con.execute(
        "create table cday as select customer_id, d, max(dpd) dpd, sum(outstanding_principal) bal from daily group by all"
    )
    first = cfg.start + timedelta(days=60)
    snaps = [
        first + timedelta(days=30 * k)
        for k in range(20)
        if first + timedelta(days=30 * k + 90) <= end
    ]
    print(
        f"book: {args.customers:,} customers, {args.days} days from {args.start}, seed {args.seed}"
    )
    print("| observation | borrowers | bad rate (30+ in 90 d) | NPL balance ratio |")
    print("|---|---:|---:|---:|")
    for t in [*snaps, end]:
        n, bad = con.execute(
            """with obs as (select customer_id from cday where d = $t and bal > 0 and dpd < 30)
               select count(*), avg((coalesce((select max(c.dpd) from cday c where c.customer_id = o.customer_id
                                     and c.d > $t and c.d <= $t + 90), 0) >= 30)::int)
               from obs o""",
            {"t": t},
        ).fetchone()  # type: ignore[misc]
        npl = con.execute(
            "select coalesce(sum(outstanding_principal) filter (where dpd > 90), 0) / sum(outstanding_principal) from daily where d = $t",
            {"t": t},
        ).fetchone()[0]  # type: ignore[index]
        rate = f"{bad:.1%}" if t in snaps else "(window open)"
        print(f"| {t} | {n:,} | {rate} | {npl:.1%} |")
    loans, borrowers, customers = con.execute(
        "select count(*), count(distinct customer_id), (select count(distinct customer_id) from customers) from loans"
    ).fetchone()  # type: ignore[misc]
    pooled = con.execute(
        """with obs as (select customer_id, d t from cday where d in (select unnest($s::date[])) and bal > 0 and dpd < 30)
           select avg((coalesce((select max(c.dpd) from cday c where c.customer_id = o.customer_id
                                 and c.d > o.t and c.d <= o.t + 90), 0) >= 30)::int)
           from obs o""",
        {"s": snaps},
    ).fetchone()[0]  # type: ignore[index]
    print(
        f"\npooled bad rate {pooled:.1%}; loans {loans:,}; borrowers {borrowers:,} of {customers:,} customers "
        f"({borrowers / customers:.0%}); loans per borrower {loans / borrowers:.2f}"
    )


if __name__ == "__main__":
    main()

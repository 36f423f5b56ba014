"""Generation speed and memory: rows per second, and resident memory as the days go by.

    .venv/bin/python benchmarks/generate_bench.py --customers 100000 --days 365

Writes into a temporary folder outside the repository and removes it afterwards (unless
--keep). Memory is sampled at each quarter of the run: flat figures mean generation is
day by day, not accumulating history.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")

from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig


def rss_mib() -> float:
    with Path("/proc/self/status").open() as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--out", type=Path, default=None, help="landing folder (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="creditflow-bench-")) / "landing"
    cfg = GeneratorConfig(
        customers=args.customers, days=args.days, start=args.start, seed=args.seed
    )
    quarters = {max(1, round(args.days * q / 4)) for q in (1, 2, 3, 4)}
    samples: list[tuple[int, float]] = []
    seen = 0
    t0 = time.perf_counter()

    def on_day(day: date, rows: dict[str, int]) -> None:
        nonlocal seen
        seen += 1
        if seen in quarters:
            samples.append((seen, rss_mib()))
            print(
                f"  day {seen:4d} ({day}): {time.perf_counter() - t0:7.1f} s, RSS {samples[-1][1]:,.0f} MiB",
                flush=True,
            )

    result = generate(cfg, out, fmt=args.format, on_day=on_day)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "customers": args.customers,
        "days": args.days,
        "format": args.format,
        "seconds": round(result.seconds, 2),
        "rows": result.rows,
        "total_rows": result.total_rows,
        "rows_per_second": round(result.total_rows / result.seconds),
        "bytes_written": size,
        "peak_rss_mib": round(peak),
        "rss_mib_by_day": {str(d): round(m) for d, m in samples},
    }
    print()
    print("| customers | days | rows | seconds | rows/s | MiB on disk | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.customers:,} | {args.days} | {result.total_rows:,} | {result.seconds:,.1f} | "
        f"{figures['rows_per_second']:,} | {size / 2**20:,.0f} | {peak:,.0f} |"
    )
    print("rows per extract:", ", ".join(f"{k} {v:,}" for k, v in result.rows.items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not args.keep and args.out is None:
        shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()

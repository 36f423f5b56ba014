"""Ingest + validation of a 5M-transaction delivery, next to DuckDB's bare load of the same file.

    .venv/bin/python benchmarks/ingest_bench.py [--rows 5000000] [--repeat 3]

Builds a realistic delivery outside the repository: a generated book's base day, then a
next day whose transactions are the generator's own rows tiled up to --rows (unique
txn_ids). Each measurement runs in a fresh process so its peak memory is its own:

- bare_memory: ``create table t as select * from read_csv(file, <contract types>)`` in memory
- bare_disk:   the same into a DuckDB file, as ingest must persist into the warehouse file
- ingest: ``creditflow.steps.ingest.ingest`` for that date (verify manifest and checksums, stage,
          Great Expectations on every extract, route to quarantine, commit, publish).

Prints wall seconds (median), rows per second, peak RSS and the ratios ingest / bare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

START = date(2026, 3, 2)
STEPS = ("bare_memory", "bare_disk", "ingest")


def prepare(root: Path, rows: int) -> None:
    import polars as pl

    from creditflow.settings import Settings
    from creditflow.steps.ingest import ingest
    from creditflow.upstream.generate import generate
    from creditflow.upstream.simulation import GeneratorConfig
    from creditflow.upstream.writer import csv_bytes

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: tests.support
    from tests.support.deliveries import read_text, refresh_manifest

    settings = Settings(home=root)
    generate(GeneratorConfig(customers=50_000, days=2, start=START, seed=7), settings.landing_dir)
    ingest(settings, START)
    shutil.copy(settings.warehouse_path, root / "base.duckdb")
    folder = settings.landing_dir / f"dt={START + timedelta(days=1)}"
    tx = read_text(folder, "transactions").filter(pl.col("txn_type") != "REVERSAL")
    copies = -(-rows // tx.height)
    tiled = pl.concat(
        [tx.with_columns((pl.col("txn_id") + f"{k:04d}").alias("txn_id")) for k in range(copies)]
    ).head(rows)
    import gzip

    (folder / "transactions.csv.gz").write_bytes(
        gzip.compress(csv_bytes(tiled), compresslevel=6, mtime=0)
    )
    refresh_manifest(folder)


def step_bare(root: Path, on_disk: bool) -> float:
    import duckdb

    from creditflow.contract import TRANSACTIONS

    path = root / "landing" / f"dt={START + timedelta(days=1)}" / "transactions.csv.gz"
    target = root / "bare.duckdb"
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target) if on_disk else ":memory:")
    t0 = time.perf_counter()
    con.execute(
        "create table t as select * from read_csv($p, header = true, columns = $c, auto_detect = false)",
        {"p": str(path), "c": {c.name: c.kind.duckdb for c in TRANSACTIONS.columns}},
    )
    return time.perf_counter() - t0


def step_ingest(root: Path) -> float:
    from creditflow.settings import Settings
    from creditflow.steps.ingest import ingest

    wh = root / "run.duckdb"
    shutil.copy(root / "base.duckdb", wh)
    shutil.rmtree(root / "published", ignore_errors=True)
    settings = Settings(home=root, warehouse=wh)
    t0 = time.perf_counter()
    result = ingest(settings, START + timedelta(days=1))
    elapsed = time.perf_counter() - t0
    assert result.status == "LOADED", result
    return elapsed


def child(step: str, root: Path) -> None:
    seconds = (
        step_ingest(root) if step == "ingest" else step_bare(root, on_disk=step == "bare_disk")
    )
    print(json.dumps({"step": step, "seconds": seconds, "peak_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries it over from the parent
    through fork and exec, so a child of the (large) preparing parent would report the
    parent's peak. VmHWM belongs to the process's own address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    ap.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.root)
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="creditflow-ingest-bench-"))
    t0 = time.perf_counter()
    if not (root / "base.duckdb").exists():
        prepare(root, args.rows)
    print(
        f"prepared {args.rows:,} transaction rows in {time.perf_counter() - t0:.0f} s under {root}"
    )
    results: dict[str, list[dict]] = {step: [] for step in STEPS}
    for _ in range(args.repeat):
        for step in STEPS:
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", step, "--root", str(root)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            results[step].append(json.loads(out))
    summary = {
        step: {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mib": max(r["peak_mib"] for r in runs),
        }
        for step, runs in results.items()
    }
    ratio = summary["ingest"]["seconds"] / summary["bare_disk"]["seconds"]
    ratio_memory = summary["ingest"]["seconds"] / summary["bare_memory"]["seconds"]
    print("\n| step | median s | rows/s | peak RSS MiB |\n|---|---:|---:|---:|")
    for step, s in summary.items():
        print(
            f"| {step} | {s['seconds']:.2f} | {args.rows / s['seconds']:,.0f} | {s['peak_mib']:,.0f} |"
        )
    print(
        f"\ningest / bare_disk = {ratio:.2f}, ingest / bare_memory = {ratio_memory:.2f} (target <= 2.5); "
        f"peak ingest RSS {summary['ingest']['peak_mib']:,.0f} MiB (target < 2048); "
        f"cores {os.cpu_count()}; runs {args.repeat}"
    )
    figures = {
        "rows": args.rows,
        "summary": summary,
        "ratio_disk": ratio,
        "ratio_memory": ratio_memory,
    }
    print(json.dumps({**figures, "runs": results}))
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

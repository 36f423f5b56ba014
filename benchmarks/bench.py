"""``creditflow bench``: how far the pipeline scales and where a night's time goes.

One command builds a book outside the repository (see ``bench_book``), then for each scale
measures every stage next to its bare engine and the whole nightly flow, each measurement in
a fresh process on a fresh copy of the book (``bench_stages``). Figures are medians over
``repeat`` runs; results go to JSON and a markdown table with the machine they came from.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from benchmarks.bench_book import BaseBook, ScaledBook, bench_env, build_base, scale_book
from creditflow.cli.common import console, fail

DEFAULT_SCALES = (10_000, 100_000, 1_000_000)
TARGET_NIGHT_SECONDS = 180.0  # issue #9: a night without retrain for 1M customers
TARGET_PEAK_MIB = 8 * 1024
TARGET_RATIO = 3.0


@dataclass
class BenchConfig:
    work: Path
    scales: tuple[int, ...] = DEFAULT_SCALES
    book: BaseBook = field(default_factory=BaseBook)
    repeat: int | None = None  # None: 3 runs up to 100k customers, 1 above (long runs vary less)
    retrain_at: str = "largest"  # which scales also measure a night with a retrain
    execution: str = "local"

    def repeats(self, customers: int) -> int:
        return self.repeat or (3 if customers <= 100_000 else 1)

    def retrain(self, customers: int) -> bool:
        if self.retrain_at == "all":
            return True
        return self.retrain_at == "largest" and customers == max(self.scales)


def machine() -> dict[str, Any]:
    import duckdb
    import great_expectations
    import polars
    import prefect
    import xgboost

    from creditflow.versioning import code_version

    mem = next(
        int(line.split()[1]) // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "cpu": cpu,
        "python": platform.python_version(),
        "versions": {
            "duckdb": duckdb.__version__,
            "polars": polars.__version__,
            "xgboost": xgboost.__version__,
            "prefect": prefect.__version__,
            "great_expectations": great_expectations.__version__,
        },
        "code_version": code_version(),
    }


def _measure(
    what: str, book: ScaledBook, name: str, work: Path, *flags: str
) -> dict[str, Any] | list[dict[str, Any]]:
    home = book.fresh_home(name)
    out = home / "figures.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_stages", what, str(home), str(book.bench_date), str(out), *flags]  # fmt: skip
    with (home / "log.txt").open("w") as log:
        done = subprocess.run(cmd, env=bench_env(work), stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = (home / "log.txt").read_text()[-3000:]
        raise RuntimeError(f"benchmark step {what} {' '.join(flags)} failed in {home}:\n{tail}")
    # a million customers' warehouse is ~20 GB: keep the figures and the log, not the copy
    for leftover in home.glob("*.duckdb*"):
        leftover.unlink()
    return json.loads(out.read_text())


def _median_stages(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for i, first in enumerate(runs[0]):
        same = [r[i] for r in runs]
        row = dict(first)
        for key in ("seconds", "peak_mib", "bare_seconds", "bare_peak_mib"):
            values = [s[key] for s in same if s[key] is not None]
            row[key] = statistics.median(values) if values else None
        row["runs"] = len(same)
        row["rows_per_second"] = row["rows"] / row["seconds"] if row["seconds"] else None
        row["ratio"] = row["seconds"] / row["bare_seconds"] if row["bare_seconds"] else None
        out.append(row)
    return out


def _with_training(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Medians over the runs, with the training rows (measured in the first run only) after
    the features they are built from."""
    if not runs:
        return []
    training = [s for s in runs[0] if s["stage"].startswith("training")]
    rest = [[s for s in run if not s["stage"].startswith("training")] for run in runs]
    rows = _median_stages(rest)
    if training:
        at = next(i for i, r in enumerate(rows) if r["stage"] == "features") + 1
        rows[at:at] = _median_stages([training])
    return rows


def run_bench(cfg: BenchConfig, progress: Any = None) -> dict[str, Any]:
    """Build what is missing and measure every scale; returns the results document."""
    cfg.work.mkdir(parents=True, exist_ok=True)
    log = cfg.work / "build.log"

    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),  # for the record only
        "machine": machine(),
        "config": {
            "scales": list(cfg.scales),
            "base_customers": cfg.book.customers,
            "history_nights": cfg.book.nights,
            "bench_date": str(cfg.book.bench_date),
            "seed": cfg.book.seed,
            "execution": cfg.execution,
            "work": str(cfg.work),
        },
        "scales": [],
    }
    t0 = time.perf_counter()
    say(f"base book: {cfg.book.customers:,} customers through {cfg.book.nights} nights (once)")
    base = build_base(cfg.book, cfg.work, log)
    results["build_seconds"] = {"base": round(time.perf_counter() - t0, 1)}
    flags = [f"--execution={cfg.execution}"] if cfg.execution != "local" else []
    for customers in sorted(cfg.scales):
        t1 = time.perf_counter()
        say(f"{customers:,} customers: replicating the book")
        book = scale_book(base, cfg.book, customers, cfg.work)
        results["build_seconds"][str(customers)] = round(time.perf_counter() - t1, 1)
        runs = []
        retrain = cfg.retrain(customers)
        # stage by stage is the local engines' measurement; on a cluster the night's own
        # step durations (from its run record) show where the time goes
        repeats = cfg.repeats(customers) if cfg.execution == "local" else 0
        for k in range(repeats):
            say(f"{customers:,} customers: stages, run {k + 1} of {repeats}")
            stage_flags = ["--retrain"] if retrain and k == 0 else []  # training: once
            measured = _measure("stages", book, f"stages-{k}", cfg.work, *stage_flags)
            assert isinstance(measured, list)
            runs.append(measured)
        stage_rows = _with_training(runs)
        say(f"{customers:,} customers: the nightly flow without a retrain")
        scale: dict[str, Any] = {
            "customers": customers,
            "copies": book.copies,
            "delivery_rows": book.rows["delivery"],
            "warehouse_rows": book.rows["warehouse"],
            "stages": stage_rows,
            "night": _measure("night", book, "night", cfg.work, *flags),
        }
        if retrain:
            say(f"{customers:,} customers: the nightly flow with a retrain")
            scale["night_retrain"] = _measure(
                "night", book, "night-retrain", cfg.work, "--retrain", *flags
            )
        results["scales"].append(scale)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _n(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cores']} cores, {m['memory_mib'] / 1024:.0f} GiB, {m['cpu']}; Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f"; code {m['code_version']}.",
        "",
        "Nightly flow (Prefect, every step; wall seconds and peak memory of the run's process):",
        "",
        "| customers | delivery rows | night w/o retrain (s) | peak MiB | Prefect overhead (s) | night with retrain (s) | peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["scales"]:
        n, r = s["night"], s.get("night_retrain")
        lines.append(
            f"| {s['customers']:,} | {sum(s['delivery_rows'].values()):,} | {_n(n['seconds'])} | "
            f"{_n(n['peak_mib'], 0)} | {_n(n['overhead_seconds'])} | "
            f"{_n(r['seconds']) if r else '-'} | {_n(r['peak_mib'], 0) if r else '-'} |"
        )
    for s in results["scales"]:
        if not s["stages"]:
            steps = s["night"]["steps"]
            lines += ["", f"Steps of the night at {s['customers']:,} customers on {results['config']['execution']}: "
                      + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()) + "."]  # fmt: skip
            continue
        lines += [
            "",
            f"Stages at {s['customers']:,} customers (median of {s['stages'][0]['runs']} runs; "
            "ratio = stage seconds / bare engine seconds):",
            "",
            "| stage | rows | seconds | rows/s | peak MiB | bare seconds | bare peak MiB | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for f in s["stages"]:
            lines.append(
                f"| {f['stage']} | {f['rows']:,} | {_n(f['seconds'], 2)} | {_n(f['rows_per_second'], 0)} | "
                f"{_n(f['peak_mib'], 0)} | {_n(f['bare_seconds'], 2)} | {_n(f['bare_peak_mib'], 0)} | "
                f"{_n(f['ratio'], 2)} |"
            )
        steps, around = s["night"]["steps"], s["night"].get("around_steps", {})
        lines += [
            "",
            "Inside the flow: steps "
            + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
            + "; around them "
            + ", ".join(f"{k} {v:.2f} s" for k, v in around.items())
            + f"; Prefect {s['night']['overhead_seconds']:.1f} s.",
        ]
    lines += ["", *verdict(results)]
    return "\n".join(lines) + "\n"


def verdict(results: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against the largest scale measured."""
    s = max(results["scales"], key=lambda x: x["customers"])
    n = s["night"]
    out = [
        f"At {s['customers']:,} customers: night without retrain {n['seconds']:.0f} s "
        f"(target < {TARGET_NIGHT_SECONDS:.0f} s: {'met' if n['seconds'] < TARGET_NIGHT_SECONDS else 'NOT met'}), "
        f"peak {n['peak_mib']:,.0f} MiB (target < {TARGET_PEAK_MIB:,} MiB: "
        f"{'met' if n['peak_mib'] < TARGET_PEAK_MIB else 'NOT met'})."
    ]
    if not s["stages"]:  # a cluster run measures nights only
        return out
    over = [f for f in s["stages"] if f["ratio"] is not None and f["ratio"] > TARGET_RATIO]
    out.append(
        "Every stage within 3x its bare engine."
        if not over
        else "Over 3x their bare engine: "
        + "; ".join(f"{f['stage']} {f['ratio']:.1f}x" for f in over)
        + "."
    )
    return out


def write_results(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "").replace("-", "")
    js = out_dir / f"bench-{stamp}.json"
    md = out_dir / f"bench-{stamp}.md"
    js.write_text(json.dumps(results, indent=2, default=str))
    md.write_text(markdown(results))
    for name, path in (("latest.json", js), ("latest.md", md)):
        (out_dir / name).write_text(path.read_text())
    return js, md


# ``creditflow bench`` and ``make bench`` run this command (the benchmark ships with the source
# checkout, not inside the installed package).
cli = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@cli.command()
def bench(
    scale: Annotated[
        list[int] | None,
        typer.Option(
            help="Customers in a measured book (repeat for a sweep). Default: 10,000, 100,000 and 1,000,000."
        ),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where books and results are built, outside the repository (env CREDITFLOW_BENCH_DIR; default: $TMPDIR/creditflow-bench). Books are reused while they are there."
        ),
    ] = None,
    base_customers: Annotated[
        int,
        typer.Option(
            min=1000,
            help="Customers in the base book that runs every history night for real; scales are multiples of it.",
        ),
    ] = 10_000,
    nights: Annotated[
        int,
        typer.Option(
            min=200, help="History nights before the measured one (a retrain needs about 200)."
        ),
    ] = 215,
    repeat: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Runs per scale; the median is reported. Default: 3 up to 100,000 customers, 1 above.",
        ),
    ] = None,
    retrain_at: Annotated[
        str,
        typer.Option(
            help="Which scales also measure training and a night with a retrain: largest, all or none."
        ),
    ] = "largest",
    execution: Annotated[
        str,
        typer.Option(
            help="Where the measured nights run: local, or as the execution setting (dask, local-cluster)."
        ),
    ] = "local",
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the JSON and markdown results; default: WORK_DIR/results."),
    ] = None,
) -> None:
    """Measure every stage next to its bare engine, and the whole night, at one or more scales."""
    import tempfile

    if retrain_at not in ("largest", "all", "none"):
        raise fail(f"--retrain-at must be largest, all or none, not {retrain_at!r}")
    work = work_dir or Path(
        os.environ.get("CREDITFLOW_BENCH_DIR") or Path(tempfile.gettempdir()) / "creditflow-bench"
    )
    repo = Path(__file__).resolve().parent.parent
    if work.resolve().is_relative_to(repo):
        raise fail(
            f"{work}: the benchmark writes gigabytes; choose a folder outside the repository"
        )
    cfg = BenchConfig(
        work=work,
        scales=tuple(scale or DEFAULT_SCALES),
        book=BaseBook(customers=base_customers, nights=nights),
        repeat=repeat,
        retrain_at=retrain_at,
        execution=execution,
    )
    console.print(
        f"Benchmark in [bold]{work}[/]: scales {', '.join(f'{s:,}' for s in sorted(cfg.scales))} customers; "
        f"base book {base_customers:,} customers x {nights} nights.",
        soft_wrap=True,
    )
    with console.status("starting") as status:
        results = run_bench(cfg, progress=lambda text: (status.update(text), console.log(text)))
    js, md = write_results(results, out or work / "results")
    console.print(markdown(results), soft_wrap=True)
    console.print(f"Results: {js}\n         {md}")


if __name__ == "__main__":
    cli(prog_name="creditflow bench")

"""Show that two checkouts of creditflow publish exactly the same rows from the same landing zone.

    .venv/bin/python benchmarks/compare_checkouts.py --before DIR --after DIR [--work DIR]
        [--customers 3000] [--days 240] [--start 2025-09-01] [--seed 20251] [--reuse]

Why: a restructuring (moving modules, renaming packages, splitting steps) must change no output.
BI tools, limit serving and the model registry read what a night publishes, so "the tests pass"
is not enough: the same deliveries must give the same tables, row for row, and the same models,
byte for byte. This script generates one landing zone (with the after side), backfills it with
each checkout's own CLI (``DIR/.venv/bin/creditflow``) into separate homes under --work, then
compares every published Parquet file, ``runs --json``, and the model registry. Only the columns
in EXCLUDED may differ: they name the run, the code or the clock, not the data.
Exit 0 when everything is identical, 1 otherwise; WORK/comparison.json keeps the details.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Columns (and JSON keys) that legitimately differ between code versions or runs.
EXCLUDED = (
    "run_id", "previous_run_id", "code_version", "flow_run_id", "started_at", "finished_at",
    "durations", "loaded_at", "attempted_at",
)  # fmt: skip
EXCLUDED_BY_TABLE = {"runs": ("input_files",)}  # landing paths as the run saw them
EXCLUDED_RUNS_JSON = ("run_id", "code_version", "seconds")  # `creditflow runs --json` fields
SIDES = ("before", "after")
EXAMPLES = 3  # example rows per difference
MAX_DIFFS = 5  # differences kept per table


def side_env(work: Path, side: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITFLOW_", "PREFECT_"))}
    env.update(
        CREDITFLOW_HOME=str(work / side / "home"),
        PREFECT_HOME=str(work / side / "prefect"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GX_ANALYTICS_ENABLED="False",
        OMP_WAIT_POLICY="PASSIVE",
    )
    return env


def run(cli: list[str], work: Path, side: str, log: Path | None = None) -> str:
    print(f"[{side}] $ {' '.join(cli)}", flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(
        cli, cwd=work / side, env=side_env(work, side), capture_output=True, text=True
    )
    if log is not None:
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        sys.exit(f"[{side}] failed with exit {done.returncode}:\n{tail}")
    print(f"[{side}]   done in {time.perf_counter() - t0:.1f} s", flush=True)
    return done.stdout


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (a published NaN is data, not a difference)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def parquet_files(published: Path) -> dict[tuple[str, str], Path]:
    """(table, partition) -> file, for every *.parquet not under a '.' or '_' folder."""
    found = {}
    for path in published.rglob("*.parquet"):
        rel = path.relative_to(published)
        if not any(p.startswith((".", "_")) for p in rel.parts[:-1]) and len(rel.parts) > 1:
            found[(rel.parts[0], str(Path(*rel.parts[1:])))] = path
    return found


def normalise(table: str, t: pa.Table) -> pa.Table:
    drop = set(EXCLUDED) | set(EXCLUDED_BY_TABLE.get(table, ()))
    return t.drop_columns([c for c in t.column_names if c in drop])


def compare_partition(table: str, part: str, a: pa.Table, b: pa.Table) -> list[dict]:
    schema_a = [(f.name, str(f.type)) for f in a.schema]
    schema_b = [(f.name, str(f.type)) for f in b.schema]
    if schema_a != schema_b:  # the columns that differ, by position
        pairs = [(x, y) for x, y in zip_longest(schema_a, schema_b) if x != y]
        before, after = [x for x, _ in pairs], [y for _, y in pairs]
        return [{"partition": part, "what": "schema", "before": before, "after": after}]
    if a.num_rows != b.num_rows:
        return [{"partition": part, "what": "rows", "before": a.num_rows, "after": b.num_rows}]
    a, b = normalise(table, a), normalise(table, b)
    if a.equals(b):
        return []
    diffs = []
    for col in a.column_names:
        va, vb = a.column(col).to_pylist(), b.column(col).to_pylist()
        rows = [i for i, (x, y) in enumerate(zip(va, vb, strict=True)) if not same(x, y)]
        if rows:
            examples = [{"row": i, "before": va[i], "after": vb[i]} for i in rows[:EXAMPLES]]
            info = {"column": col, "rows_differing": len(rows), "examples": examples}
            diffs.append({"partition": part, "what": "values", **info})
    return diffs


def compare_published(homes: dict[str, Path]) -> dict[str, dict]:
    files = {s: parquet_files(homes[s] / "published") for s in SIDES}
    tables: dict[str, dict] = {}
    for key in sorted(set(files["before"]) | set(files["after"])):
        table, part = key
        res = tables.setdefault(table, {"partitions": 0, "rows": 0, "diffs": [], "differing": 0})
        missing = [s for s in SIDES if key not in files[s]]
        if missing:
            diffs = [{"partition": part, "what": f"missing on the {missing[0]} side"}]
        else:
            a, b = (pq.ParquetFile(files[s][key]).read() for s in SIDES)
            diffs = compare_partition(table, part, a, b)
            res["partitions"] += 1
            res["rows"] += a.num_rows
        res["differing"] += bool(diffs)
        res["diffs"] += diffs[: MAX_DIFFS - len(res["diffs"])]
    return tables


def strip_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_keys(v) for k, v in obj.items() if k not in EXCLUDED}
    return [strip_keys(v) for v in obj] if isinstance(obj, list) else obj


def compare_models(homes: dict[str, Path]) -> dict[str, Any]:
    """Boosters (and any other file) byte for byte; JSON (cards, champion.json) minus EXCLUDED."""
    roots = {s: homes[s] / "models" for s in SIDES}
    names = {s: set() for s in SIDES}
    for s, root in roots.items():
        if root.exists():
            names[s] = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
            names[s] = {n for n in names[s] if not Path(n).name.startswith(".")}
    diffs = [f"only on the before side: {n}" for n in sorted(names["before"] - names["after"])]
    diffs += [f"only on the after side: {n}" for n in sorted(names["after"] - names["before"])]
    for name in sorted(names["before"] & names["after"]):
        a, b = ((roots[s] / name).read_bytes() for s in SIDES)
        if name.endswith(".json"):
            a, b = (strip_keys(json.loads(x)) for x in (a, b))
        if a != b:
            keys = (
                sorted(k for k in a | b if a.get(k) != b.get(k))
                if {type(a), type(b)} == {dict}
                else []
            )
            diffs.append(f"differs: {name}" + (f" (keys {', '.join(keys)})" if keys else ""))
    return {"files": len(names["before"] | names["after"]), "diffs": diffs}


def compare_runs_json(outputs: dict[str, str]) -> dict[str, Any]:
    rows = {
        s: [
            {k: v for k, v in json.loads(line).items() if k not in EXCLUDED_RUNS_JSON}
            for line in out.splitlines()
            if line.startswith("{")
        ]
        for s, out in outputs.items()
    }
    diffs = [f"{a} != {b}" for a, b in zip(rows["before"], rows["after"], strict=False) if a != b]
    if len(rows["before"]) != len(rows["after"]):
        diffs.insert(0, f"runs: {len(rows['before'])} before, {len(rows['after'])} after")
    return {"runs": len(rows["before"]), "diffs": diffs[:MAX_DIFFS]}


# What the demo prints at its end, for one home: the summary moved from creditflow.summary to
# creditflow.cli.summary in the restructuring, so either is tried.
SUMMARY = """
import sys
from datetime import date
from rich.console import Console
from creditflow.settings import load_settings
try:
    from creditflow.cli.summary import demo_summary
except ImportError:
    from creditflow.summary import demo_summary
home, landing, last = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3])
demo_summary(Console(width=120, color_system=None), load_settings(home=home, landing=landing), last)
"""


def demo_summary(checkout: Path, home: Path, landing: Path, last: date, work: Path) -> str:
    """The demo's closing summary printed by a checkout for a home, with the home masked."""
    python = checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", SUMMARY, str(home), str(landing), last.isoformat()],
        env=side_env(work, "summary"),
        capture_output=True,
        text=True,
        check=True,
    )
    masked = done.stdout.replace(str(home.resolve()), "HOME").replace(str(home), "HOME")
    # the two homes' paths differ in length, which widens a table's padding and rules
    return "\n".join(re.sub(r"[ ━─]+", " ", line).rstrip() for line in masked.splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout with .venv/bin/creditflow")
    ap.add_argument("--after", type=Path, required=True, help="checkout with .venv/bin/creditflow")
    ap.add_argument("--work", type=Path, help="homes, landing zone and report (default: temp dir)")
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--days", type=int, default=240)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 9, 1))
    ap.add_argument("--seed", type=int, default=20251)
    ap.add_argument("--reuse", action="store_true", help="keep existing homes; only compare")
    args = ap.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="creditflow-compare-"))).resolve()
    dirs = {"before": args.before.resolve(), "after": args.after.resolve()}
    clis = {s: str(d / ".venv" / "bin" / "creditflow") for s, d in dirs.items()}
    homes = {s: work / s / "home" for s in SIDES}
    landing, end = work / "landing", args.start + timedelta(days=args.days - 1)
    print(f"work dir {work}\nbefore   {dirs['before']}\nafter    {dirs['after']}")
    print(f"excluded columns (and JSON keys in models/): {', '.join(EXCLUDED)}")
    for table, cols in EXCLUDED_BY_TABLE.items():
        print(f"excluded in {table} only: {', '.join(cols)}")
    print(f"excluded from `runs --json`: {', '.join(EXCLUDED_RUNS_JSON)}")
    for s in SIDES:
        if homes[s].exists() and not args.reuse:
            sys.exit(f"{homes[s]} exists: pass --reuse to compare it again, or another --work")
        (work / s).mkdir(parents=True, exist_ok=True)
    if not (args.reuse and any(landing.glob("dt=*/_manifest.json"))):
        book = f"--customers {args.customers} --days {args.days} --start {args.start}"
        gen = ["generate", *book.split(), "--seed", str(args.seed), "--landing", str(landing)]
        run([clis["after"], "--home", str(homes["after"]), *gen], work, "after")
    runs_out = {}
    for s in SIDES:
        base = [clis[s], "--home", str(homes[s]), "--landing", str(landing)]
        if not (args.reuse and (homes[s] / "published").exists()):
            bf = ["backfill", "--start", str(args.start), "--end", str(end)]
            run(base + bf, work, s, work / s / "backfill.log")
        runs_out[s] = run([*base, "runs", "--json", "--limit", "1000000"], work, s)

    tables, models = compare_published(homes), compare_models(homes)
    runs_json = compare_runs_json(runs_out)
    summaries = {s: demo_summary(dirs[s], homes[s], landing, end, work) for s in SIDES}
    for s in SIDES:
        (work / f"summary-{s}.txt").write_text(summaries[s], encoding="utf-8")
    same_summary = summaries["before"] == summaries["after"]
    print(f"\n{'table':<22}{'partitions':>11}{'rows':>12}  result")
    for name, t in tables.items():
        verdict = "identical" if not t["differing"] else f"{t['differing']} partition(s) DIFFER"
        print(f"{name:<22}{t['partitions']:>11,}{t['rows']:>12,}  {verdict}")
        for d in t["diffs"]:
            col = f" {d['column']}: {d['rows_differing']:,} row(s) differ" if "column" in d else ""
            print(f"    {name} {d['partition']}: {d['what']}{col}")
            for key in ("before", "after"):
                if key in d:
                    print(f"      {key}: {d[key]}")
            for ex in d.get("examples", []):
                print(f"      row {ex['row']}: before {ex['before']!r} after {ex['after']!r}")
    if not tables:
        print("no published tables found")
    for what, res, unit in (("models", models, "files"), ("runs --json", runs_json, "runs")):
        print(f"{what}: {res[unit]} {unit} compared, {'DIFFER' if res['diffs'] else 'identical'}")
    if not models["files"]:
        print("    (no model registry: models are first trained after ~200 days)")
    lines = summaries["after"].count("\n")
    print(f"demo summary: {lines} lines, {'identical' if same_summary else 'DIFFER'}")
    if not same_summary:
        print(f"    diff {work / 'summary-before.txt'} {work / 'summary-after.txt'}")
    for line in models["diffs"][:20] + runs_json["diffs"]:
        print(f"    {line}")
    identical = (
        not (any(t["differing"] for t in tables.values()) or models["diffs"] or runs_json["diffs"])
        and same_summary
        and bool(tables)
    )
    book = {"customers": args.customers, "days": args.days, "start": args.start, "end": end}
    excluded = {"columns": EXCLUDED, "by_table": EXCLUDED_BY_TABLE, "runs": EXCLUDED_RUNS_JSON}
    summary = {"identical": identical, **{s: str(dirs[s]) for s in SIDES}, "book": book}
    summary |= {"excluded": excluded, "tables": tables, "models": models, "runs_json": runs_json}
    summary["demo_summary_identical"] = same_summary
    (work / "comparison.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\n{'IDENTICAL' if identical else 'DIFFERENT'}; details in {work / 'comparison.json'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())

"""Commands for what readers get: the run report and the check of every published table."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditflow.cli.app import app
from creditflow.cli.common import (
    BusinessDate,
    console,
    fail,
    parse_date,
    settings_of,
)


@app.command()
def report(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Write the run report for a date: one self-contained HTML page under published/_reports."""
    from creditflow.outputs.report import write_report

    day = parse_date(business_date)
    with console.status(f"drawing the report for {day}"):
        path = write_report(settings_of(ctx), day)
    console.print(f"report: {path.resolve()}", soft_wrap=True)


@app.command()
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Read every published table as BI tools do (DuckDB, Polars, pyarrow) and check it against
    the data dictionary: columns, types, equal rows, one part-0.parquet per date, no stray files."""
    from creditflow.outputs.verify import verify as verify_published

    published = settings_of(ctx).published_dir
    if not published.is_dir():
        raise fail(f"nothing published at {published}")
    with console.status(f"reading {published}"):
        checks, top = verify_published(published)
    failed = top + [f"{c.table}: {p}" for c in checks for p in c.problems]
    if as_json:
        typer.echo(json.dumps({"tables": [dataclasses.asdict(c) for c in checks], "problems": failed}, indent=2))  # fmt: skip
    else:
        table = Table("table", "partitions", "rows", "readers agree with the dictionary", title=f"published: {published}")  # fmt: skip
        for c in checks:
            table.add_row(c.table, f"{c.partitions:,}", f"{c.rows:,}", "[red]no[/]" if c.problems else "[green]yes[/]")  # fmt: skip
        console.print(table)
        for problem in failed:
            console.print(f"[red]{problem}[/]", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


BENCH_HELP = """Measure every stage next to its bare engine, and the whole night, at one or more
scales (benchmarks/bench.py in the source checkout; options: creditflow bench --help)."""


@app.command(
    help=BENCH_HELP,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    # the benchmark is a development tool kept out of the shipped package: run it from the
    # checkout this package is installed from, with every option passed through
    repo = Path(__file__).resolve().parents[2]
    if not (repo / "benchmarks" / "bench.py").is_file():
        raise fail("the benchmark ships with the source checkout: run it from a clone")
    code = subprocess.call([sys.executable, "-m", "benchmarks.bench", *ctx.args], cwd=repo)
    raise typer.Exit(code)

"""Commands for the data path by hand: generate deliveries, ingest a date, list its
quarantine, advance the ledger."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditflow.cli.app import app
from creditflow.cli.common import (
    BusinessDate,
    DateOption,
    console,
    echo_json_lines,
    fail,
    generate_with_progress,
    locked,
    parse_date,
    settings_of,
)
from creditflow.upstream.generate import Format

# A calendar date: typer parses --start without a zone, and no clock is read.
DEFAULT_START = datetime(2026, 1, 1)  # noqa: DTZ001


@app.command()
def generate(
    ctx: typer.Context,
    customers: Annotated[
        int, typer.Option(min=1, help="Customers in the starting base; more register every day.")
    ] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Business dates to deliver.")] = 90,
    start: DateOption = DEFAULT_START,
    seed: Annotated[
        int, typer.Option(help="Same seed and arguments give byte-identical files.")
    ] = 42,
    landing: Annotated[
        Path | None, typer.Option(help="Landing zone to write; default: the configured one.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Extract file format.")] = Format.csv,
    defects: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of rows to damage (duplicates, nulls, unknown customers, bad amounts and dates, malformed lines).",
        ),
    ] = 0.0,
    defects_file: Annotated[
        Path | None,
        typer.Option(help="Where to record injected defects; default: beside the landing zone."),
    ] = None,
) -> None:
    """Write synthetic deliveries: one dt=YYYY-MM-DD folder per day, manifest last."""
    from creditflow.upstream.generate import generate as run_generate
    from creditflow.upstream.simulation import GeneratorConfig

    target = landing or settings_of(ctx).landing_dir
    cfg = GeneratorConfig(customers=customers, days=days, start=parse_date(start), seed=seed)
    result = generate_with_progress(run_generate, cfg, target, fmt.value, defects, defects_file)
    console.print(
        f"[green]Wrote {result.days} deliveries[/] to [bold]{target}[/] "
        f"({result.total_rows:,} rows in {result.seconds:.1f} s, {result.total_rows / max(result.seconds, 1e-9):,.0f} rows/s)."
    )
    if result.defects_file is not None:
        console.print(
            f"Injected {result.defects:,} defects, listed in [bold]{result.defects_file}[/]."
        )


@app.command()
def ingest(
    ctx: typer.Context,
    business_date: BusinessDate,
    force: Annotated[
        bool, typer.Option(help="Reload even if this exact delivery is already loaded.")
    ] = False,
) -> None:
    """Load one business date's delivery: verify, validate (Great Expectations), quarantine, commit."""
    from creditflow.landing import DeliveryError
    from creditflow.steps.ingest import ingest as run_ingest
    from creditflow.warehouse import WarehouseBusy

    day = parse_date(business_date)
    try:
        with console.status(f"ingesting {day}"), locked(ctx, f"ingest {day}"):
            result = run_ingest(settings_of(ctx), day, force=force)
    except (DeliveryError, WarehouseBusy) as exc:
        raise fail(str(exc)) from exc
    if result.status == "UNCHANGED":
        console.print(
            f"{day}: this exact delivery is already loaded (load {result.load_id}); nothing changed."
        )
        return
    table = Table(
        "extract",
        "loaded",
        "quarantined",
        title=f"{day} loaded in {result.seconds:.1f} s (load {result.load_id})",
    )
    for name, n in result.rows_loaded.items():
        q = result.rows_quarantined[name]
        table.add_row(name, f"{n:,}", f"[yellow]{q:,}[/]" if q else "0")
    console.print(table)
    if result.data_docs:
        console.print(f"Data Docs: {result.data_docs}")
    if any(result.rows_quarantined.values()):
        console.print(f"See the held-back rows with: creditflow quarantine --date {day}")


@app.command()
def ledger(
    ctx: typer.Context,
    business_date: BusinessDate,
) -> None:
    """Advance the loan ledger to a date and publish its delinquency reports."""
    from creditflow.steps.delinquency import run_ledger
    from creditflow.warehouse import WarehouseBusy

    day = parse_date(business_date)
    try:
        with locked(ctx, f"ledger {day}"):
            result = run_ledger(settings_of(ctx), day)
    except WarehouseBusy as exc:
        raise fail(str(exc)) from exc
    led = result.ledger
    console.print(
        f"{day}: {led.active_loans:,} active loans (from {led.previous_date or 'an empty ledger'}) in {led.seconds:.2f} s"
        + (
            f"; [yellow]{led.loans_without_schedule} loans have no schedule yet[/]"
            if led.loans_without_schedule
            else ""
        )
    )
    table = Table("report", "rows", "file", title=f"published for {day}")
    for p in result.published:
        table.add_row(p.table, f"{p.rows:,}", str(p.path))
    console.print(table)


@app.command()
def quarantine(
    ctx: typer.Context,
    business_date: BusinessDate,
    extract: Annotated[str | None, typer.Option(help="Only this extract.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line, for scripts.")
    ] = False,
) -> None:
    """List a date's quarantined rows with their natural keys and failed rules."""
    from creditflow.transforms.ingest.quarantine import quarantined_rows
    from creditflow.warehouse import WarehouseBusy, open_warehouse

    day = parse_date(business_date)
    settings = settings_of(ctx)
    if not settings.warehouse_path.exists():
        raise fail(f"no warehouse at {settings.warehouse_path}; run creditflow ingest first")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True) as con:
            rows = quarantined_rows(con, day, extract)
    except WarehouseBusy as exc:
        raise fail(str(exc)) from exc
    if as_json:
        echo_json_lines(rows)
        return
    table = Table(
        "extract", "row", "line", "key", "failed rules", title=f"quarantine {day}: {len(rows)} rows"
    )
    for r in rows:
        table.add_row(
            r["extract"],
            str(r["row"]),
            str(r["line"] or ""),
            r["key"] or r["record"][:60],
            "\n".join(r["failed_rules"]),
        )
    console.print(table)

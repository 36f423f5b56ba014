"""Commands that run nights: one date, a backfill, the demo, the served schedule, and the
run listing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.table import Table

from creditflow.cli.app import app
from creditflow.cli.common import (
    BusinessDate,
    console,
    echo_json_lines,
    fail,
    flow_overrides,
    generate_with_progress,
    night_line,
    parse_date,
    progress_bar,
    quiet_prefect,
    settings_of,
)
from creditflow.flows.schedule import DEFAULT_CRON, DEFAULT_NAME, DEFAULT_TIMEZONE, Reprocess

# The demo book: big enough for the model to train and be checked out of time later on.
DEMO_CUSTOMERS = 3000
DEMO_DAYS = 240
DEMO_START = date(2025, 9, 1)
DEMO_SEED = 20251


@app.command("run")
def run_one(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Run one business date through the whole pipeline (the nightly flow) and publish it."""
    quiet_prefect()
    from creditflow.flows.nightly import NightFailed, nightly
    from creditflow.warehouse import WarehouseBusy

    day = parse_date(business_date)
    settings = settings_of(ctx)
    try:
        with console.status(f"running {day}: ingest, ledger, model, limits, publish"):
            result = nightly(run_date=day, overrides=flow_overrides(settings), trigger="manual")
    except (NightFailed, WarehouseBusy) as exc:
        raise fail(str(exc)) from exc
    console.print(night_line(result), soft_wrap=True)
    from creditflow.cli.summary import night_offers_line, notices_line

    notices = result["steps"]["notices"]
    console.print("  " + night_offers_line(settings, day), soft_wrap=True, highlight=False)
    console.print(
        "  "
        + notices_line(
            day, notices["by_type"], notices["added"], notices["withdrawn"], notices["changed"]
        ),
        soft_wrap=True,
        highlight=False,
    )
    for step, seconds in result["durations"].items():
        console.print(f"  {step:<8} {seconds:6.2f} s")
    if result["later_dates_changed"]:
        later = result["later_dates_changed"]
        console.print(
            f"[yellow]{len(later)} later dates were built on the previous run of {day} and are now "
            f"out of date: {later[0]} .. {later[-1]}.[/] Rerun them with: creditflow backfill "
            f"--start {later[0]} --end {later[-1]} --reprocess all",
            soft_wrap=True,
        )


@app.command()
def backfill(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First business date.")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last business date.")],
    reprocess: Annotated[
        Reprocess,
        typer.Option(
            help="missing: dates without a successful run; failed: dates whose last run failed; all."
        ),
    ] = Reprocess.missing,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the dates that would run, run nothing.")
    ] = False,
) -> None:
    """Run a range of dates in order; stop at the first failure, keeping earlier dates published."""
    quiet_prefect()
    run_range(ctx, parse_date(start), parse_date(end), reprocess.value, dry_run, "backfill")


def run_range(
    ctx: typer.Context, first: date, last: date, reprocess: str, dry_run: bool, trigger: str
) -> list[dict]:
    from creditflow.flows.backfill import backfill as backfill_flow
    from creditflow.flows.backfill import plan
    from creditflow.flows.nightly import NightFailed
    from creditflow.warehouse import WarehouseBusy

    settings = settings_of(ctx)
    try:
        dates = plan(settings, first, last, Reprocess(reprocess))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    skipped = (last - first).days + 1 - len(dates)
    if dry_run:
        console.print(
            f"would run {len(dates)} dates ({skipped} already published are skipped, --reprocess {reprocess}):"
        )
        for d in dates:
            console.print(f"  {d}")
        return []
    if not dates:
        console.print(f"nothing to do: every date from {first} to {last} is published.")
        return []
    results: list[dict] = []
    with progress_bar() as progress:
        bar = progress.add_task(f"{trigger} {dates[0]}", total=len(dates))

        def on_date(d: date, result: dict | None) -> None:
            if result is None:
                progress.update(bar, description=f"{trigger} {d}")
                return
            results.append(result)
            progress.console.print(night_line(result), soft_wrap=True)
            progress.advance(bar)

        try:
            backfill_flow(
                start=first,
                end=last,
                reprocess=Reprocess(reprocess),
                overrides=flow_overrides(settings),
                trigger=trigger,
                on_date=on_date,
            )
        except (NightFailed, WarehouseBusy) as exc:
            done = f"{len(results)} dates published before it" if results else "no date published"
            raise fail(
                f"backfill stopped: {exc}\n({done}; fix the delivery and rerun the same command)"
            ) from exc
    if skipped:
        console.print(f"{skipped} dates already published were skipped (--reprocess {reprocess}).")
    return results


@app.command("runs")
def list_runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the latest runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the latest runs: date, run id, status, model, code version, duration."""
    from creditflow.flows.runs import latest_runs
    from creditflow.warehouse import WarehouseBusy, has_table, open_warehouse

    settings = settings_of(ctx)
    if not settings.warehouse_path.exists():
        raise fail(f"no warehouse at {settings.warehouse_path}; nothing has run yet")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True, wait_seconds=30) as con:
            if not has_table(con, "runs"):
                raise fail("no runs yet: run creditflow run or backfill first")
            rows = latest_runs(con, limit)
    except WarehouseBusy as exc:
        raise fail(str(exc)) from exc
    if as_json:
        echo_json_lines(rows)
        return
    table = Table(title=f"latest runs in {settings.warehouse_path}")
    for col in ("date", "#", "run id", "trigger", "status", "model", "code", "s", "error"):
        table.add_column(col, no_wrap=col in ("run id", "model"))
    for r in rows:
        colour = {"SUCCESS": "green", "FAILED": "red"}.get(r["status"], "yellow")
        table.add_row(
            str(r["run_date"]), str(r["attempt"]), r["run_id"], r["trigger"],
            f"[{colour}]{r['status']}[/]", r["model_version"] or "", r["code_version"],
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "", (r["error"] or "")[:80],
        )  # fmt: skip
    console.print(table)


@app.command()
def serve(
    ctx: typer.Context,
    cron: Annotated[str, typer.Option(help="When to run, in --timezone.")] = DEFAULT_CRON,
    timezone: Annotated[str, typer.Option(help="The schedule's time zone.")] = DEFAULT_TIMEZONE,
    name: Annotated[str, typer.Option(help="Deployment name.")] = DEFAULT_NAME,
) -> None:
    """Register the nightly deployment on the Prefect server (PREFECT_API_URL) and serve it.

    Each scheduled run processes the business date before its scheduled time in Asia/Shanghai.
    Needs a real server (`prefect server start`): the ephemeral one runs no scheduler.
    """
    from creditflow.flows.deployment import serve_nightly

    console.print(
        f"serving [bold]nightly/{name}[/] on cron '{cron}' ({timezone}); Ctrl-C stops serving",
        soft_wrap=True,
    )
    # absolute paths: the deployment's parameters must mean the same wherever a run executes
    settings = settings_of(ctx)
    absolute = settings.model_copy(
        update={
            k: getattr(settings, k).resolve()
            for k in ("home", "landing", "warehouse", "published", "models")
        }
        | ({"policy_file": settings.policy_file.resolve()} if settings.policy_file else {})
    )
    serve_nightly(flow_overrides(absolute), cron=cron, timezone=timezone, name=name)


@app.command()
def demo(ctx: typer.Context) -> None:
    """Generate a demo book if the landing zone is empty and run every date through the pipeline."""
    import time

    quiet_prefect()
    from creditflow.landing import available_dates
    from creditflow.upstream.generate import generate as run_generate
    from creditflow.upstream.simulation import GeneratorConfig

    t0 = time.perf_counter()
    settings = settings_of(ctx)
    landing = settings.landing_dir
    if landing.exists() and any(landing.glob("dt=*/_manifest.json")):
        console.print(f"Landing zone [bold]{landing}[/] already has deliveries; keeping them.")
    else:
        console.print(
            f"[bold]1/2[/] Generating a demo book: {DEMO_CUSTOMERS:,} customers over {DEMO_DAYS} days from {DEMO_START}."
        )
        cfg = GeneratorConfig(
            customers=DEMO_CUSTOMERS, days=DEMO_DAYS, start=DEMO_START, seed=DEMO_SEED
        )
        generate_with_progress(run_generate, cfg, landing, "csv", 0.0, None)
    dates = available_dates(landing)
    if not dates:
        raise fail(f"no complete deliveries in {landing}")
    console.print(
        f"[bold]2/2[/] Running {len(dates)} nights ({dates[0]} .. {dates[-1]}) through ingest, validation, "
        f"ledger, model, limits and publication into {settings.home}.",
        soft_wrap=True,
    )
    run_range(ctx, dates[0], dates[-1], "missing", False, "demo")
    from creditflow.cli.summary import demo_summary

    console.print(f"\n[green]Done in {time.perf_counter() - t0:.0f} s.[/]")
    demo_summary(console, settings, dates[-1])

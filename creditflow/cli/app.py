"""The ``creditflow`` command line."""

from __future__ import annotations

import dataclasses
import json
import os
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from creditflow.settings import Settings, load_settings

app = typer.Typer(
    name="creditflow",
    help="The nightly credit pipeline: generate, ingest, ledger, model, limits, publish.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()

# The demo book: big enough for the model to train and be checked out of time later on.
DEMO_CUSTOMERS = 3000
DEMO_DAYS = 240
DEMO_START = date(2025, 9, 1)
DEMO_SEED = 20251
# A calendar date: typer parses --start without a zone, and no clock is read.
DEFAULT_START = datetime(2026, 1, 1)  # noqa: DTZ001


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


model_app = typer.Typer(
    help="The credit model: evaluate the recipe, list, promote and roll back versions.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")
limits_app = typer.Typer(
    help="The limit policy: decide limits for a date, explain one customer, show the policy.",
    no_args_is_help=True,
)
app.add_typer(limits_app, name="limits")


def _settings(ctx: typer.Context) -> Settings:
    return ctx.ensure_object(dict)["settings"]


def _parse_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


DateOption = Annotated[
    datetime, typer.Option(formats=["%Y-%m-%d"], help="Business date, YYYY-MM-DD.")
]
BusinessDate = Annotated[
    datetime,
    typer.Option("--date", formats=["%Y-%m-%d"], help="Business date, YYYY-MM-DD (Asia/Shanghai)."),
]


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Root of every default path (env CREDITFLOW_HOME; default ./data)."),
    ] = None,
    landing: Annotated[
        Path | None,
        typer.Option(help="Landing zone (env CREDITFLOW_LANDING; default HOME/landing)."),
    ] = None,
    warehouse: Annotated[
        Path | None,
        typer.Option(help="DuckDB file (env CREDITFLOW_WAREHOUSE; default HOME/warehouse.duckdb)."),
    ] = None,
    published: Annotated[
        Path | None,
        typer.Option(help="Published Parquet (env CREDITFLOW_PUBLISHED; default HOME/published)."),
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(help="Model registry (env CREDITFLOW_MODELS; default HOME/models)."),
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            help="Limit policy TOML (env CREDITFLOW_POLICY_FILE; default the packaged policy)."
        ),
    ] = None,
) -> None:
    """Settings come from these flags, then CREDITFLOW_* variables, then defaults under HOME."""
    ctx.ensure_object(dict)["settings"] = load_settings(
        home=home,
        landing=landing,
        warehouse=warehouse,
        published=published,
        models=models,
        policy_file=policy_file,
    )


@app.command("settings")
def show_settings(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the resolved locations."""
    described = _settings(ctx).describe()
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table("setting", "value", title="creditflow settings")
    for key, value in described.items():
        table.add_row(key, value)
    console.print(table)


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

    target = landing or _settings(ctx).landing_dir
    cfg = GeneratorConfig(customers=customers, days=days, start=_parse_date(start), seed=seed)
    result = _generate_with_progress(run_generate, cfg, target, fmt.value, defects, defects_file)
    console.print(
        f"[green]Wrote {result.days} deliveries[/] to [bold]{target}[/] "
        f"({result.total_rows:,} rows in {result.seconds:.1f} s, {result.total_rows / max(result.seconds, 1e-9):,.0f} rows/s)."
    )
    if result.defects_file is not None:
        console.print(
            f"Injected {result.defects:,} defects, listed in [bold]{result.defects_file}[/]."
        )


def _progress() -> Progress:
    """The CLI's progress bar: what is being done, how far, how long, how long still."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _generate_with_progress(
    run_generate, cfg, target: Path, fmt: str, defects: float, defects_file: Path | None
):
    with _progress() as progress:
        task = progress.add_task("generating", total=cfg.days)

        def on_day(day: date, _rows: dict[str, int]) -> None:
            progress.update(task, advance=1, description=f"generating {day.isoformat()}")

        return run_generate(
            cfg, target, fmt=fmt, defect_rate=defects, defects_file=defects_file, on_day=on_day
        )


def _locked(ctx: typer.Context, holder: str) -> AbstractContextManager[None]:
    """A step run by hand holds the run lock like a whole run: never two writers at once."""
    from creditflow.runs import run_lock

    return run_lock(_settings(ctx), holder)


def _echo_json_lines(rows: list[dict]) -> None:
    """One JSON object per line, for scripts (`--json` on listing commands)."""
    for row in rows:
        typer.echo(json.dumps(row, default=str))


def _fail(message: str, code: int = 1) -> typer.Exit:
    # never wrapped: error messages carry file paths that people copy
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def ingest(
    ctx: typer.Context,
    business_date: BusinessDate,
    force: Annotated[
        bool, typer.Option(help="Reload even if this exact delivery is already loaded.")
    ] = False,
) -> None:
    """Load one business date's delivery: verify, validate (Great Expectations), quarantine, commit."""
    from creditflow.ingest import ingest as run_ingest
    from creditflow.landing import DeliveryError
    from creditflow.warehouse import WarehouseBusy

    day = _parse_date(business_date)
    try:
        with console.status(f"ingesting {day}"), _locked(ctx, f"ingest {day}"):
            result = run_ingest(_settings(ctx), day, force=force)
    except (DeliveryError, WarehouseBusy) as exc:
        raise _fail(str(exc)) from exc
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
    from creditflow.delinquency import run_ledger
    from creditflow.warehouse import WarehouseBusy

    day = _parse_date(business_date)
    try:
        with _locked(ctx, f"ledger {day}"):
            result = run_ledger(_settings(ctx), day)
    except WarehouseBusy as exc:
        raise _fail(str(exc)) from exc
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
    from creditflow.ingest import quarantined_rows
    from creditflow.warehouse import WarehouseBusy, open_warehouse

    day = _parse_date(business_date)
    settings = _settings(ctx)
    if not settings.warehouse_path.exists():
        raise _fail(f"no warehouse at {settings.warehouse_path}; run creditflow ingest first")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True) as con:
            rows = quarantined_rows(con, day, extract)
    except WarehouseBusy as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _echo_json_lines(rows)
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


def _quiet_prefect() -> None:
    """The CLI shows its own progress; Prefect's per-task log lines would drown it."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _overrides(settings: Settings) -> dict[str, object]:
    """The resolved settings, as plain values a flow run (or deployment) can take."""
    return settings.model_dump(mode="json")


def _night_line(result: dict) -> str:
    steps = result["steps"]
    limits, retrain = steps["limits"], steps["retrain"]
    actions = ", ".join(f"{k} {v:,}" for k, v in limits["actions"].items() if v)
    model = limits["model_version"] or "starter rule"
    trained = ""
    if retrain.get("trained"):
        verdict = "promoted" if retrain["promoted"] else "not promoted"
        trained = f"; trained {retrain['trained']} (AUC {retrain['auc']:.3f}, {verdict})"
    return f"{result['run_date']} {result['run_id']}: {model}; {actions}{trained}"


@app.command("run")
def run_one(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Run one business date through the whole pipeline (the nightly flow) and publish it."""
    _quiet_prefect()
    from creditflow.flows.nightly import NightFailed, nightly
    from creditflow.warehouse import WarehouseBusy

    day = _parse_date(business_date)
    settings = _settings(ctx)
    try:
        with console.status(f"running {day}: ingest, ledger, model, limits, publish"):
            result = nightly(run_date=day, overrides=_overrides(settings), trigger="manual")
    except (NightFailed, WarehouseBusy) as exc:
        raise _fail(str(exc)) from exc
    console.print(_night_line(result), soft_wrap=True)
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


class ReprocessChoice(StrEnum):
    missing = "missing"
    failed = "failed"
    all = "all"


@app.command()
def backfill(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First business date.")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last business date.")],
    reprocess: Annotated[
        ReprocessChoice,
        typer.Option(
            help="missing: dates without a successful run; failed: dates whose last run failed; all."
        ),
    ] = ReprocessChoice.missing,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the dates that would run, run nothing.")
    ] = False,
) -> None:
    """Run a range of dates in order; stop at the first failure, keeping earlier dates published."""
    _quiet_prefect()
    _run_range(ctx, _parse_date(start), _parse_date(end), reprocess.value, dry_run, "backfill")


def _run_range(
    ctx: typer.Context, first: date, last: date, reprocess: str, dry_run: bool, trigger: str
) -> list[dict]:
    from creditflow.flows.nightly import NightFailed, Reprocess, plan
    from creditflow.flows.nightly import backfill as backfill_flow
    from creditflow.warehouse import WarehouseBusy

    settings = _settings(ctx)
    try:
        dates = plan(settings, first, last, Reprocess(reprocess))
    except ValueError as exc:
        raise _fail(str(exc)) from exc
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
    with _progress() as progress:
        bar = progress.add_task(f"{trigger} {dates[0]}", total=len(dates))

        def on_date(d: date, result: dict | None) -> None:
            if result is None:
                progress.update(bar, description=f"{trigger} {d}")
                return
            results.append(result)
            progress.console.print(_night_line(result), soft_wrap=True)
            progress.advance(bar)

        try:
            backfill_flow(
                start=first,
                end=last,
                reprocess=Reprocess(reprocess),
                overrides=_overrides(settings),
                trigger=trigger,
                on_date=on_date,
            )
        except (NightFailed, WarehouseBusy) as exc:
            done = f"{len(results)} dates published before it" if results else "no date published"
            raise _fail(
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
    from creditflow.warehouse import WarehouseBusy, has_table, open_warehouse

    settings = _settings(ctx)
    if not settings.warehouse_path.exists():
        raise _fail(f"no warehouse at {settings.warehouse_path}; nothing has run yet")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True, wait_seconds=30) as con:
            if not has_table(con, "runs"):
                raise _fail("no runs yet: run creditflow run or backfill first")
            rel = con.sql(
                """select run_date, attempt, run_id, trigger, status, model_version, code_version,
                          epoch(finished_at - started_at) as seconds, error
                   from runs order by run_date desc, attempt desc limit $n""",
                params={"n": limit},
            )
            rows = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
    except WarehouseBusy as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _echo_json_lines(rows)
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
def report(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Write the run report for a date: one self-contained HTML page under published/_reports."""
    from creditflow.report import write_report

    day = _parse_date(business_date)
    with console.status(f"drawing the report for {day}"):
        path = write_report(_settings(ctx), day)
    console.print(f"report: {path.resolve()}", soft_wrap=True)


@app.command()
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Read every published table as BI tools do (DuckDB, Polars, pyarrow) and check it against
    the data dictionary: columns, types, equal rows, one part-0.parquet per date, no stray files."""
    from creditflow.verify_outputs import verify as verify_published

    published = _settings(ctx).published_dir
    if not published.is_dir():
        raise _fail(f"nothing published at {published}")
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


@app.command()
def serve(
    ctx: typer.Context,
    cron: Annotated[str, typer.Option(help="When to run, in --timezone.")] = "0 2 * * *",
    timezone: Annotated[str, typer.Option(help="The schedule's time zone.")] = "Asia/Shanghai",
    name: Annotated[str, typer.Option(help="Deployment name.")] = "creditflow-nightly",
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
    settings = _settings(ctx)
    absolute = settings.model_copy(
        update={
            k: getattr(settings, k).resolve()
            for k in ("home", "landing", "warehouse", "published", "models")
        }
        | ({"policy_file": settings.policy_file.resolve()} if settings.policy_file else {})
    )
    serve_nightly(_overrides(absolute), cron=cron, timezone=timezone, name=name)


@app.command()
def demo(ctx: typer.Context) -> None:
    """Generate a demo book if the landing zone is empty and run every date through the pipeline."""
    import time

    _quiet_prefect()
    from creditflow.landing import available_dates
    from creditflow.upstream.generate import generate as run_generate
    from creditflow.upstream.simulation import GeneratorConfig

    t0 = time.perf_counter()
    settings = _settings(ctx)
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
        _generate_with_progress(run_generate, cfg, landing, "csv", 0.0, None)
    dates = available_dates(landing)
    if not dates:
        raise _fail(f"no complete deliveries in {landing}")
    console.print(
        f"[bold]2/2[/] Running {len(dates)} nights ({dates[0]} .. {dates[-1]}) through ingest, validation, "
        f"ledger, model, limits and publication into {settings.home}.",
        soft_wrap=True,
    )
    _run_range(ctx, dates[0], dates[-1], "missing", False, "demo")
    from creditflow.summary import demo_summary

    console.print(f"\n[green]Done in {time.perf_counter() - t0:.0f} s.[/]")
    demo_summary(console, settings, dates[-1])


@app.command()
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

    from creditflow.bench import DEFAULT_SCALES, BenchConfig, markdown, run_bench, write_results
    from creditflow.bench_book import BaseBook

    if retrain_at not in ("largest", "all", "none"):
        raise _fail(f"--retrain-at must be largest, all or none, not {retrain_at!r}")
    work = work_dir or Path(
        os.environ.get("CREDITFLOW_BENCH_DIR") or Path(tempfile.gettempdir()) / "creditflow-bench"
    )
    repo = Path(__file__).resolve().parent.parent
    if work.resolve().is_relative_to(repo):
        raise _fail(
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


@model_app.command("train")
def model_train(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Train a challenger on matured history up to a date, apply the promotion gate, publish model_runs."""
    from creditflow.modeling import retrain
    from creditflow.warehouse import WarehouseBusy

    day = _parse_date(business_date)
    try:
        with (
            console.status(f"training on history up to {day}"),
            _locked(ctx, f"model train {day}"),
        ):
            run, _ = retrain(_settings(ctx), day)
    except WarehouseBusy as exc:
        raise _fail(str(exc)) from exc
    if run.model_version is None:
        console.print(f"{day}: no model trained: {run.decision_reason}")
        return
    verdict = "[green]promoted[/]" if run.promoted else "[yellow]not promoted[/]"
    console.print(
        f"{run.model_version}: out of time {run.oot_start} .. {run.oot_end}, AUC {run.auc:.3f}, KS {run.ks:.3f}, "
        f"PSI {run.psi:.3f}; {verdict}: {run.decision_reason}",
        soft_wrap=True,
    )


@model_app.command("list")
def model_list(ctx: typer.Context) -> None:
    """List the registry's model versions with their out-of-time figures; the champion is marked."""
    from creditflow.models.registry import Registry

    registry = Registry(_settings(ctx).models_dir)
    champion = registry.champion()
    table = Table(title=f"models in {registry.root}")
    table.add_column("")
    table.add_column("version", no_wrap=True)  # an identifier people copy: never wrapped
    for name in ("trained as of", "OOT window", "AUC", "KS", "PSI", "decision"):
        table.add_column(name)
    for version in registry.versions():
        _, card = registry.load(version)
        m, w = card["metrics"], card["windows"]
        table.add_row(
            "*" if version == champion else "",
            version,
            str(card["trained_as_of"]),
            f"{w['oot_start']} .. {w['oot_end']}",
            f"{m['auc']:.3f}",
            f"{m['ks']:.3f}",
            f"{card['psi_train_vs_oot']:.3f}",
            card["decision"]["reason"],
        )
    console.print(table)
    if champion is None:
        console.print("No champion yet: limits follow the policy's starter rule.")


EffectiveDate = Annotated[
    datetime | None,
    typer.Option(
        "--from-date",
        formats=["%Y-%m-%d"],
        help="First business date it applies to (default: the day after the latest run).",
    ),
]


def _effective(settings: Settings, given: datetime | None) -> date | None:
    """By hand, a change applies from the next night on, never to dates already run: reruns
    of those keep the model they had."""
    if given is not None:
        return _parse_date(given)
    if not settings.warehouse_path.exists():
        return None
    from creditflow.warehouse import has_table, open_warehouse

    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        if not has_table(con, "runs"):
            return None
        latest = con.sql("select max(run_date) from runs where status = 'SUCCESS'").fetchall()
    return latest[0][0] + timedelta(days=1) if latest[0][0] else None


@model_app.command("promote")
def model_promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A version from `model list`.")],
    from_date: EffectiveDate = None,
) -> None:
    """Make a version champion by hand, from a business date on (recorded in the history)."""
    from creditflow.models.registry import Registry

    settings = _settings(ctx)
    effective = _effective(settings, from_date)
    try:
        Registry(settings.models_dir).promote(version, "promoted by hand", effective)
    except KeyError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{version} is champion" + (f" from {effective} on." if effective else "."))


@model_app.command("rollback")
def model_rollback(ctx: typer.Context, from_date: EffectiveDate = None) -> None:
    """Return to the champion before the current one, from a business date on."""
    from creditflow.models.registry import Registry

    settings = _settings(ctx)
    effective = _effective(settings, from_date)
    try:
        version = Registry(settings.models_dir).rollback(effective)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{version} is champion again" + (f" from {effective} on." if effective else "."))


@model_app.command("evaluate")
def model_evaluate(
    table: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Labelled CSV or Parquet table.")
    ],
    target: Annotated[str, typer.Option(help="0/1 column: 1 = bad.")],
    time_column: Annotated[
        str | None,
        typer.Option(help="Split out of time on this column (latest fifth is the test)."),
    ] = None,
    id_column: Annotated[str | None, typer.Option(help="Identifier column, not a feature.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Run the project's training recipe on any labelled table and print its metrics."""
    from creditflow.models.evaluate_table import evaluate_table

    try:
        result = evaluate_table(table, target, time_column=time_column, id_column=id_column)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    m = result.metrics
    console.print(
        f"{table}: {len(result.features)} features, train {result.n_train:,}, test {result.n_test:,} ({result.split})"
    )
    summary = Table("AUC", "Gini", "KS", "Brier", "bad rate", "trees", title="test set")
    summary.add_row(
        f"{m.auc:.3f}",
        f"{m.gini:.3f}",
        f"{m.ks:.3f}",
        f"{m.brier:.4f}",
        f"{m.bad_rate:.1%}",
        str(result.best_iteration),
    )
    console.print(summary)
    cal = Table("decile", "n", "predicted", "observed", title="calibration by decile of pd")
    for row in result.calibration:
        cal.add_row(
            str(row["decile"]), f"{row['n']:,}", f"{row['predicted']:.3f}", f"{row['observed']:.3f}"
        )
    console.print(cal)


@limits_app.command("run")
def limits_run(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Score every customer with the champion (or the starter rule) and publish limit_updates."""
    from creditflow.limits import run_limits
    from creditflow.policy import PolicyError
    from creditflow.warehouse import WarehouseBusy

    day = _parse_date(business_date)
    try:
        with _locked(ctx, f"limits run {day}"):
            result = run_limits(_settings(ctx), day)
    except (WarehouseBusy, PolicyError) as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"{day}: {result.customers:,} customers, model {result.model_version or 'none (starter rule)'}, "
        f"policy {result.policy_version}; reason codes for {result.reasons_computed:,} adverse actions"
    )
    table = Table("action", "customers", title=f"limit actions for {day}")
    for action, n in result.actions.items():
        table.add_row(action, f"{n:,}")
    console.print(table)
    if result.published:
        console.print(f"published {result.published.path}")


@limits_app.command("explain")
def limits_explain(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer, e.g. C000000042.")],
    business_date: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="Business date (default: the latest evaluated)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show how a customer's limit was reached: inputs, each rule in order, the binding one."""
    from creditflow.limits import explain
    from creditflow.warehouse import WarehouseBusy, has_table, open_warehouse

    settings = _settings(ctx)
    day = _parse_date(business_date) if business_date else None
    if not settings.warehouse_path.exists():
        raise _fail(f"no warehouse at {settings.warehouse_path}; run creditflow run first")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True, wait_seconds=30) as con:
            if not has_table(con, "limit_decisions"):
                raise _fail("no limits decided yet: run creditflow run or backfill first")
            found = explain(con, customer_id, day)
    except WarehouseBusy as exc:
        raise _fail(str(exc)) from exc
    if found is None:
        raise _fail(
            f"no limit decision for customer {customer_id}"
            + (f" on {day}" if day else "")
            + "; check the id, or run that date"
        )
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(found), default=str, indent=2))
        return
    console.print(
        f"[bold]{customer_id}[/] on {found.business_date} (limit effective the next day); "
        f"policy {found.policy_version}, model {found.model_version or 'none'}, run {found.run_id}",
        soft_wrap=True,
    )
    inputs = Table("input", "value", title="inputs")
    for key, value in found.inputs.items():
        inputs.add_row(key, "" if value is None else str(value))
    console.print(inputs)
    rules = Table("#", "rule", "limit after", "", title="rules in order")
    # the checks that end an evaluation come first: eligibility, then the two freezes
    if found.terminal:
        rules.add_row("1", found.terminal, "0.00", "[bold]binds: ends the evaluation[/]")
    else:
        for i, gate in enumerate(("eligibility", "delinquency.freeze", "model.freeze"), start=1):
            rules.add_row(str(i), gate, "", "passed")
        for i, (rule, value, changed) in enumerate(found.steps, start=4):
            binds = rule == found.policy_rule
            mark = "[bold]binds[/]" if binds else ("changed" if changed and i > 4 else "")
            rules.add_row(str(i), rule, str(value), mark)
    console.print(rules)
    console.print(
        f"new limit [bold]{found.new_limit}[/], action [bold]{found.action}[/], "
        f"binding rule [bold]{found.policy_rule}[/]",
        soft_wrap=True,
    )
    if found.reason_codes:
        console.print("reasons: " + "; ".join(found.reason_codes), soft_wrap=True)


@limits_app.command("policy")
def limits_policy(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Check the limit policy in force and print it (with its version and content hash)."""
    from creditflow.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy

    settings = _settings(ctx)
    try:
        policy = load_policy(settings.policy_file)
    except PolicyError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(policy.model_dump_json(indent=2))
        return
    console.print(
        f"policy {policy.full_version} from {settings.policy_file or DEFAULT_POLICY_FILE}: valid",
        soft_wrap=True,
    )
    console.print_json(policy.model_dump_json())


if __name__ == "__main__":
    app()

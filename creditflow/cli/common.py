"""What every command shares: the console, dates, settings, progress, errors, the lock."""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

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
from rich.text import Text

from creditflow.settings import Settings

console = Console()


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.ensure_object(dict)["settings"]


def parse_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


DateOption = Annotated[
    datetime, typer.Option(formats=["%Y-%m-%d"], help="Business date, YYYY-MM-DD.")
]
BusinessDate = Annotated[
    datetime,
    typer.Option("--date", formats=["%Y-%m-%d"], help="Business date, YYYY-MM-DD (Asia/Shanghai)."),
]


def progress_bar() -> Progress:
    """The CLI's progress bar: what is being done, how far, how long, how long still."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def generate_with_progress(
    run_generate: Any, cfg: Any, target: Path, fmt: str, defects: float, defects_file: Path | None
) -> Any:
    with progress_bar() as progress:
        task = progress.add_task("generating", total=cfg.days)

        def on_day(day: date, _rows: dict[str, int]) -> None:
            progress.update(task, advance=1, description=f"generating {day.isoformat()}")

        return run_generate(
            cfg, target, fmt=fmt, defect_rate=defects, defects_file=defects_file, on_day=on_day
        )


def locked(ctx: typer.Context, holder: str) -> AbstractContextManager[None]:
    """A step run by hand holds the run lock like a whole run: never two writers at once."""
    from creditflow.flows.runs import run_lock_migrated

    return run_lock_migrated(settings_of(ctx), holder)


def echo_json_lines(rows: list[dict]) -> None:
    """One JSON object per line, for scripts (`--json` on listing commands)."""
    for row in rows:
        typer.echo(json.dumps(row, default=str))


def fail(message: str, code: int = 1) -> typer.Exit:
    # never wrapped: error messages carry file paths that people copy
    # the message is text, not markup: it may quote a value someone typed or delivered ("[/]")
    console.print(
        Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )
    return typer.Exit(code)


def quiet_prefect() -> None:
    """The CLI shows its own progress; Prefect's per-task log lines would drown it."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def flow_overrides(settings: Settings) -> dict[str, object]:
    """The resolved settings, as plain values a flow run (or deployment) can take."""
    return settings.model_dump(mode="json")


def night_line(result: dict) -> str:
    steps = result["steps"]
    limits, retrain = steps["limits"], steps["retrain"]
    actions = ", ".join(f"{k} {v:,}" for k, v in limits["actions"].items() if v)
    model = limits["model_version"] or "starter rule"
    trained = ""
    if retrain.get("trained"):
        verdict = "promoted" if retrain["promoted"] else "not promoted"
        trained = f"; trained {retrain['trained']} (AUC {retrain['auc']:.3f}, {verdict})"
    notices = steps.get("notices")
    sent = ""
    if notices:
        sent = f"; {notices['notices']:,} notices"
        if notices["added"] or notices["withdrawn"] or notices["changed"]:
            sent += (
                f" (rerun: {notices['added']:,} added, {notices['withdrawn']:,} withdrawn, "
                f"{notices['changed']:,} changed)"
            )
    return f"{result['run_date']} {result['run_id']}: {model}; {actions}{sent}{trained}"

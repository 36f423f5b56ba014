"""The ``creditflow`` command line: the root command, its global options and groups.

Each group of commands lives in its own module (data, nights, outputs, model, limits), which
``creditflow.cli`` imports to register them. Commands call the rooms that own the work and
print; they run no SQL of their own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditflow.cli.common import console, settings_of
from creditflow.settings import load_settings

app = typer.Typer(
    name="creditflow",
    help="The nightly credit pipeline: generate, ingest, ledger, model, limits, publish.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
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
    described = settings_of(ctx).describe()
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table("setting", "value", title="creditflow settings")
    for key, value in described.items():
        table.add_row(key, value)
    console.print(table)

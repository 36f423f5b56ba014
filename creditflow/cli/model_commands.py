"""``creditflow model``: evaluate the recipe, train, list, promote and roll back versions."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditflow.cli.app import model_app
from creditflow.cli.common import (
    BusinessDate,
    console,
    fail,
    locked,
    parse_date,
    settings_of,
)
from creditflow.settings import Settings


@model_app.command("train")
def model_train(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Train a challenger on matured history up to a date, apply the promotion gate, publish model_runs."""
    from creditflow.steps.retrain import retrain
    from creditflow.warehouse import WarehouseBusy

    day = parse_date(business_date)
    try:
        with (
            console.status(f"training on history up to {day}"),
            locked(ctx, f"model train {day}"),
        ):
            run, _ = retrain(settings_of(ctx), day)
    except WarehouseBusy as exc:
        raise fail(str(exc)) from exc
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

    registry = Registry(settings_of(ctx).models_dir)
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
        return parse_date(given)
    if not settings.warehouse_path.exists():
        return None
    from creditflow.flows.runs import last_published_date
    from creditflow.warehouse import has_table, open_warehouse

    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        latest = last_published_date(con) if has_table(con, "runs") else None
    return latest + timedelta(days=1) if latest else None


@model_app.command("promote")
def model_promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A version from `model list`.")],
    from_date: EffectiveDate = None,
) -> None:
    """Make a version champion by hand, from a business date on (recorded in the history)."""
    from creditflow.models.registry import Registry

    settings = settings_of(ctx)
    effective = _effective(settings, from_date)
    try:
        Registry(settings.models_dir).promote(version, "promoted by hand", effective)
    except KeyError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{version} is champion" + (f" from {effective} on." if effective else "."))


@model_app.command("rollback")
def model_rollback(ctx: typer.Context, from_date: EffectiveDate = None) -> None:
    """Return to the champion before the current one, from a business date on."""
    from creditflow.models.registry import Registry

    settings = settings_of(ctx)
    effective = _effective(settings, from_date)
    try:
        version = Registry(settings.models_dir).rollback(effective)
    except ValueError as exc:
        raise fail(str(exc)) from exc
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
        raise fail(str(exc)) from exc
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

"""``creditflow limits``: decide limits for a date, explain one customer, show the policy."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from creditflow.cli.app import limits_app
from creditflow.cli.common import (
    BusinessDate,
    console,
    fail,
    locked,
    parse_date,
    settings_of,
)


@limits_app.command("run")
def limits_run(ctx: typer.Context, business_date: BusinessDate) -> None:
    """Score every customer with the champion (or the starter rule), price the limits and publish
    limit_updates and pricing_summary, and the date's customer notices with them (their limit
    notices follow the decisions)."""
    from creditflow.policy.config import PolicyError, load_policy
    from creditflow.steps.customer_notices import run_notices
    from creditflow.steps.limits import run_limits
    from creditflow.warehouse import WarehouseBusy

    day = parse_date(business_date)
    try:
        with locked(ctx, f"limits run {day}"):
            settings = settings_of(ctx)
            policy = load_policy(settings.policy_file)  # one policy for the limits and notices
            outcome = run_limits(settings, day, policy=policy)
            notices = run_notices(settings, day, run_id=f"limits-{day.isoformat()}", policy=policy)
    except (WarehouseBusy, PolicyError) as exc:
        raise fail(str(exc)) from exc
    result = outcome.result
    console.print(
        f"{day}: {result.customers:,} customers, model {result.model_version or 'none (starter rule)'}, "
        f"policy {result.policy_version}; reason codes for {result.reasons_computed:,} adverse actions"
    )
    table = Table("action", "customers", title=f"limit actions for {day}")
    for action, n in result.actions.items():
        table.add_row(action, f"{n:,}")
    console.print(table)
    console.print(f"published {outcome.published.path}", soft_wrap=True)
    console.print(f"published {outcome.pricing.path}", soft_wrap=True)
    console.print(
        f"published {notices.published.path} ({notices.result.notices:,} notices)", soft_wrap=True
    )


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
    from creditflow.policy.explain import explain
    from creditflow.warehouse import WarehouseBusy, has_table, open_warehouse

    settings = settings_of(ctx)
    day = parse_date(business_date) if business_date else None
    if not settings.warehouse_path.exists():
        raise fail(f"no warehouse at {settings.warehouse_path}; run creditflow run first")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True, wait_seconds=30) as con:
            if not has_table(con, "limit_decisions"):
                raise fail("no limits decided yet: run creditflow run or backfill first")
            found = explain(con, customer_id, day)
    except WarehouseBusy as exc:
        raise fail(str(exc)) from exc
    if found is None:
        raise fail(
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
    line = pricing_line(found.new_limit, found.inputs.get("risk_grade"), found.pricing)
    console.print(line, soft_wrap=True, markup=False, highlight=False)
    if found.reason_codes:
        console.print("reasons: " + "; ".join(found.reason_codes), soft_wrap=True)


def _pct(rate: object) -> str:
    return f"{float(rate):.2%}"  # type: ignore[arg-type]


def pricing_line(new_limit: object, grade: object, pricing: dict[str, object]) -> str:
    """How the offered rate was set, in one line (policy.pricing has the rules): the grade's
    rate, the cost build-up when the policy has one, the offer and the rule that set it."""
    offered, rule = pricing.get("offered_annual_rate"), pricing.get("pricing_rule")
    if offered is None:
        if not new_limit:
            return "pricing: no rate (limit 0)"
        return "pricing: no rate recorded (decided before pricing existed; rerun the date)"
    if rule == "pricing.starter":
        return f"pricing: starter rate {_pct(offered)} ({rule})"
    grade_rate, cost_rate = pricing.get("grade_rate"), pricing.get("cost_rate")
    loss = pricing.get("expected_loss_rate")
    parts = []
    if grade_rate is not None:
        parts.append(f"grade {grade} rate {_pct(grade_rate)}")
    if cost_rate is not None:
        loss_part = "expected loss" + (f" {_pct(loss)}" if loss is not None else "")
        parts.append(f"cost build-up {_pct(cost_rate)} (funding, operating, {loss_part}, margin)")
    how = ", ".join(parts) + " -> " if parts else ""
    return f"pricing: {how}offered {_pct(offered)} ({rule})"


@limits_app.command("policy")
def limits_policy(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Check the limit policy in force and print it (with its version and content hash)."""
    from creditflow.policy.config import DEFAULT_POLICY_FILE, PolicyError, load_policy

    settings = settings_of(ctx)
    try:
        policy = load_policy(settings.policy_file)
    except PolicyError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(policy.model_dump_json(indent=2))
        return
    console.print(
        f"policy {policy.full_version} from {settings.policy_file or DEFAULT_POLICY_FILE}: valid",
        soft_wrap=True,
    )
    console.print_json(policy.model_dump_json())

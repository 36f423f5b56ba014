"""``creditflow notices``: the customer notices a date asked the messaging system to send, and
what reruns of the date added or withdrew."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from rich.text import Text

from creditflow.cli.app import app
from creditflow.cli.common import BusinessDate, console, fail, parse_date, settings_of
from creditflow.contract import BUSINESS_TZ


@app.command()
def notices(
    ctx: typer.Context,
    business_date: BusinessDate,
    notice_type: Annotated[
        str | None,
        typer.Option("--type", help="Only this notice type, e.g. OVERDUE or LIMIT_DECREASE."),
    ] = None,
    customer_id: Annotated[
        str | None, typer.Option("--customer", help="Only this customer, e.g. C000000042.")
    ] = None,
    revisions: Annotated[
        bool,
        typer.Option("--revisions", help="Also show what reruns of the date added and withdrew."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List a date's customer notices: type, what each says, when it may be sent."""
    from creditflow.policy.notice_queries import notice_revisions, notice_runs, stored_notices
    from creditflow.policy.notice_types import NOTICE_TYPES
    from creditflow.warehouse import WarehouseBusy, open_warehouse

    day = parse_date(business_date)
    kind = notice_type.upper() if notice_type is not None else None
    if kind is not None and kind not in NOTICE_TYPES:
        raise fail(f"unknown notice type {notice_type!r}; valid types: {', '.join(NOTICE_TYPES)}")
    settings = settings_of(ctx)
    if not settings.warehouse_path.exists():
        raise fail(f"no warehouse at {settings.warehouse_path}; run creditflow run first")
    try:
        with open_warehouse(settings.warehouse_path, read_only=True, wait_seconds=30) as con:
            runs = notice_runs(con, day)
            rows = stored_notices(con, day, kind, customer_id) if runs else []
            changes = notice_revisions(con, day, kind, customer_id) if runs and revisions else []
    except WarehouseBusy as exc:
        raise fail(str(exc)) from exc
    if not runs:
        raise fail(
            f"no notices computed for {day}: run that date first (creditflow run --date {day})"
        )
    if as_json:
        out: dict[str, object] = {"business_date": day, "runs": runs, "notices": rows}
        if revisions:
            out["revisions"] = changes
        typer.echo(json.dumps(out, default=_json_value, indent=2))
        return
    which = " ".join(part for part in (kind, f"for {customer_id}" if customer_id else None) if part)
    table = Table(
        "notice id",
        "customer",
        "type",
        "what it says",
        "send after",
        title=Text(f"notices for {day}{f' ({which})' if which else ''}: {len(rows):,}"),
        caption=f"send after: Asia/Shanghai; computed by {_runs_line(runs)}",
    )
    for r in rows:
        table.add_row(
            Text(str(r["notice_id"]), no_wrap=True),
            Text(str(r["customer_id"]), no_wrap=True),
            Text(str(r["notice_type"])),
            Text(_what_it_says(r)),
            Text(_clock(r["send_after"]), no_wrap=True),
        )
    console.print(table)
    if revisions:
        _print_revisions(day, runs, changes, selected=bool(which))


def _print_revisions(day: date, runs: list[str], changes: list[dict], *, selected: bool) -> None:
    if len(runs) < 2:
        console.print(f"{day} was computed once: no rerun added or withdrew a notice")
        return
    if not changes:
        console.print(
            f"{day} was computed {len(runs)} times; no rerun added or withdrew a notice"
            + (" of this selection" if selected else ""),
            highlight=False,
        )
        return
    count = {k: sum(c["change"] == k for c in changes) for k in ("ADDED", "WITHDRAWN", "CHANGED")}
    table = Table(
        "run",
        "change",
        "notice id",
        "type",
        "customer",
        title=Text(
            f"reruns of {day}: {count['ADDED']:,} notices added, {count['WITHDRAWN']:,} "
            f"withdrawn, {count['CHANGED']:,} changed"
        ),
    )
    for c in changes:
        table.add_row(*(Text(str(c[k]), no_wrap=True) for k in c))
    console.print(table)


def _runs_line(runs: list[str]) -> str:
    return ", ".join(runs) if len(runs) <= 3 else f"{len(runs)} runs ({runs[0]} .. {runs[-1]})"


def _what_it_says(r: dict) -> str:
    """The notice's content in one line: only the fields its type fills."""
    parts: list[str] = []
    if r["loan_id"]:
        inst = f" #{r['installment_no']}" if r["installment_no"] is not None else ""
        parts.append(f"loan {r['loan_id']}{inst}")
    if r["due_date"] is not None:
        parts.append(f"due {r['due_date']}")
    if r["amount_due"] is not None:
        parts.append(f"amount {r['amount_due']:,}")
    if r["dpd"] is not None:
        parts.append(f"{r['dpd']} dpd")
    if r["new_limit"] is not None:
        before = f"{r['previous_limit']:,} -> " if r["previous_limit"] is not None else ""
        parts.append(f"limit {before}{r['new_limit']:,}")
    if r["offered_annual_rate"] is not None:
        parts.append(f"rate {float(r['offered_annual_rate']):.2%}")
    if r["reasons"]:
        parts.append("reasons: " + "; ".join(r["reasons"]))
    return ", ".join(parts)


def _clock(value: object) -> str:
    if not isinstance(value, datetime):
        return str(value)
    return value.astimezone(ZoneInfo(BUSINESS_TZ)).strftime("%Y-%m-%d %H:%M")


def _json_value(value: object) -> str:
    """Dates and timestamps in ISO 8601, decimals as strings (exact)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")

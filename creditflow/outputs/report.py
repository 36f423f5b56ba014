"""The run report: one self-contained HTML page per business date, built from published Parquet.

It reads what BI sees (the contract's output under ``<published>``), not the warehouse, so it
shows what consumers got and can run while another process holds the warehouse. Only
partitions up to and including the report date are read, so a report for a past date shows
what was known then (except that a rerun replaces a date's partition in place).

Charts are matplotlib figures inlined as SVG: the page is one file with no script and no
external resource, so it opens offline and can be mailed or archived as is. A
Content-Security-Policy forbids every fetch, so a stray external reference shows up as a
console error in a browser instead of a silent network call.

The file goes to ``<published>/_reports/report-YYYY-MM-DD.html`` through a temporary file and a
rename; the folder starts with ``_`` so globs over ``<published>/<table>/dt=*/*.parquet`` never
see it. A table that is missing, or a partition that is absent or empty, gives a note in
place of its chart; a chart that fails to draw gives an error note, never a failed night.
"""

from __future__ import annotations

import html
import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import matplotlib
import numpy as np
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from creditflow.contract import BUCKETS
from creditflow.models.registry import Registry
from creditflow.models.scoring import GRADES, points
from creditflow.policy.config import RATE_CEILING
from creditflow.policy.ladder import ACTIONS
from creditflow.policy.notice_types import NOTICE_TYPES
from creditflow.settings import Settings

log = logging.getLogger(__name__)

REPORTS_DIR = "_reports"  # leading underscore: outside every BI glob over <table>/dt=*/
ROLL_TO = (*BUCKETS, "CLOSED")
GRADE_ORDER = (*(g for g, _ in GRADES), "G")
STARTER = "starter"  # the group of customers without a risk grade (limits from the starter rule)
NO_CHAMPION = "no champion yet: limits follow the policy's starter rule"

# Every chart of the report: its figure id and caption (tests and readers rely on the ids).
FIGURES: dict[str, str] = {
    "fig-buckets": "Delinquency buckets over time (outstanding principal)",
    "fig-rates": "30+ delinquency rate over time: coincident and lagged",
    "fig-roll": "Roll rates: bucket 30 days earlier to bucket on the date (share of balance)",
    "fig-vintage": "Vintage curves: share of loans ever 30+ days past due by months on book",
    "fig-scores": "Score distribution of the customers scored on the date",
    "fig-roc": "Champion: out-of-time ROC curve and KS",
    "fig-calibration": "Champion: calibration by decile of predicted PD (out of time)",
    "fig-actions": "Limit action mix",
    "fig-limits": "New limit by risk grade",
    "fig-limit-trend": "Limits over time: total new limits and customers moved each night",
    "fig-pricing": "Offered rate against expected loss and costs by risk grade",
    "fig-notices": "Customer notices by type each night",
}
FIGURE_IDS = tuple(FIGURES)

# matplotlib writes a creator, a date and Dublin Core URIs into every SVG unless told not to;
# without them the page holds no URL at all and the same data gives the same bytes.
SVG_METADATA: dict[str, Any] = {"Creator": None, "Date": None, "Format": None, "Type": None}

BUCKET_COLOURS = matplotlib.colormaps["RdYlGn_r"](np.linspace(0.05, 0.95, len(BUCKETS)))
BLUE, ORANGE, RED, GREY = "#1f6fb2", "#e07b00", "#c0392b", "#8c8c8c"
# pricing_summary's groups besides the grades: no model score yet, and loans booked without
# an evaluation before them
PRICING_GROUPS = (*GRADE_ORDER, "STARTER", "NO_OFFER")
NOTICE_COLOURS = {
    "DUE_SOON": "#9ecae1",
    "DUE_TODAY": BLUE,
    "AUTO_DEBIT_FAILED": ORANGE,
    "OVERDUE": RED,
    "LIMIT_NEW": "#2e8b57",
    "LIMIT_INCREASE": "#a1d99b",
    "LIMIT_DECREASE": "#fdd0a2",
    "LIMIT_FREEZE": "#7b3294",
    "LIMIT_CLOSE": "#5b2333",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  margin:0 auto;max-width:1100px;padding:1rem 2rem 3rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem;margin:.6rem 0 .2rem}
h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2.4rem}
h3{margin:1.2rem 0 .4rem;font-size:1.05rem}
.sub{color:#57606a;margin:0 0 1rem}
nav{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.4rem 1rem}
nav ol{margin:.3rem 0;columns:2}
figure{margin:1.2rem 0;padding:.6rem .8rem;border:1px solid #d0d7de;border-radius:6px}
figcaption{font-weight:600;margin-bottom:.4rem}
figure svg{display:block;max-width:100%;height:auto;margin:0 auto}
.key{font-weight:600;color:#0b4f8a;margin:.5rem 0 0}
.note{color:#6e4b00;background:#fff8e1;padding:.4rem .6rem;border-radius:4px}
.error{color:#8a1010;background:#fde8e8;padding:.4rem .6rem;border-radius:4px}
table{border-collapse:collapse;font-size:.88rem;margin:.4rem 0}
th,td{padding:.2rem .55rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
td{white-space:nowrap} td:last-child{white-space:normal}
th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fde8e8;color:#8a1010;font-weight:600}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.6rem 0}
dl.meta dt{color:#57606a}
dl.meta dd{margin:0;font-family:ui-monospace,monospace}
"""


# --- reading the published area ----------------------------------------------------------------


class _Published:
    """Views over the published tables, cut at the report date (``dt <= D``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, root: Path, day: date) -> None:
        self.con, self.root, self.day = con, root, day
        self._views: dict[str, str | None] = {}

    def view(self, table: str) -> str | None:
        """The view's name, or None when the table has no partition at all."""
        if table not in self._views:
            self._views[table] = self._make_view(table)
        return self._views[table]

    def _make_view(self, table: str) -> str | None:
        folder = self.root / table
        if not any(folder.glob("dt=*/*.parquet")):
            return None
        pattern = (folder / "dt=*" / "*.parquet").as_posix().replace("'", "''")
        name = "pub_" + re.sub(r"\W", "_", table)
        # union_by_name: columns added to a table over time must not break reading old dates;
        # dt comes from the path only and is typed explicitly rather than guessed.
        self.con.execute(
            f"""create or replace temp view {name} as
                select * from read_parquet('{pattern}', hive_partitioning = true,
                                           hive_types = {{'dt': DATE}}, union_by_name = true)
                where dt <= DATE '{self.day.isoformat()}'"""
        )
        return name

    def has_partition(self, table: str) -> bool:
        return any((self.root / table / f"dt={self.day.isoformat()}").glob("*.parquet"))

    def partition_dates(self, table: str) -> list[date]:
        """The dates up to the report date with a partition, empty ones included (a query
        over the rows cannot tell a night with no rows from a night not published)."""
        out = []
        for folder in (self.root / table).glob("dt=*"):
            try:
                day = date.fromisoformat(folder.name.removeprefix("dt="))
            except ValueError:
                continue
            if day <= self.day and any(folder.glob("*.parquet")):
                out.append(day)
        return sorted(out)

    def columns(self, table: str) -> set[str]:
        name = self.view(table)
        if name is None:
            return set()
        return {r[0] for r in self.con.execute(f"describe {name}").fetchall()}

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """Rows of ``query``; ``$d`` is the report date."""
        params = {"d": self.day} if "$d" in query else None
        return self.con.execute(query, params).fetchall()

    def absent(self, table: str) -> str | None:
        """Why the table has nothing for the date, or None when its partition is there."""
        if self.view(table) is None:
            return f"no published {table} table yet"
        if not self.has_partition(table):
            return f"no {table} partition for {self.day.isoformat()}"
        return None


# --- formatting --------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _money(value: Decimal | float | int | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _pct(value: float | Decimal | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}%}"


def _num(mapping: dict[str, Any] | None, key: str) -> float | None:
    """A number from a model card, or None when absent or not numeric (hand-made cards)."""
    if not mapping:
        return None
    value = mapping.get(key)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _fmt3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    numeric: Iterable[int] = (),
    row_class: Callable[[Sequence[object]], str | None] | None = None,
) -> str:
    nums = set(numeric)
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cls = row_class(row) if row_class else None
        cells = "".join(
            f'<td class="num">{_esc(v)}</td>' if i in nums else f"<td>{_esc(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


# --- figures -----------------------------------------------------------------------------------


@dataclass
class _Chart:
    """What a chart function gives back: the figure (or a note saying why there is none)."""

    fig: Figure | None = None
    key: str = ""  # the key figure, one line under the chart
    note: str | None = None
    extra: str = ""  # HTML after the key line (small tables)


def _svg(fig: Figure, fig_id: str) -> str:
    """The figure as inline SVG whose ids cannot collide with another figure's on the page."""
    buf = io.StringIO()
    # A fixed salt per figure keeps clip-path ids stable, so the same data gives the same page.
    with matplotlib.rc_context({"svg.hashsalt": fig_id}):
        fig.savefig(buf, format="svg", metadata=SVG_METADATA)
    fig.clear()  # the figure is not registered with pyplot: clearing frees its artists now
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: not valid inside HTML
    # Glyph and element ids (DejaVuSans-30, patch_1, ...) repeat across figures; scope them.
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{fig_id}-{m[1]}"', text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{fig_id}-{m[1]}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{fig_id}-{m[1]})", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{_esc(FIGURES[fig_id])}" ', 1)


def _figure(fig_id: str, draw: Callable[[], _Chart]) -> str:
    """One ``<figure>``: caption, chart (or note), key line. A failing chart gives an error note."""
    try:
        chart = draw()
        body = _svg(chart.fig, fig_id) if chart.fig is not None else ""
        if chart.note:
            body += _note(chart.note)
    except Exception as exc:  # one broken chart must not cost the night its whole report
        log.exception("report chart %s failed", fig_id)
        chart = _Chart()
        body = f'<p class="error">{_esc(fig_id)} could not be drawn: {_esc(type(exc).__name__)}: {_esc(exc)}</p>'
    key = f'<p class="key">{_esc(chart.key)}</p>' if chart.key else ""
    return (
        f'<figure id="{fig_id}"><figcaption>{_esc(FIGURES[fig_id])}</figcaption>'
        f"{body}{key}{chart.extra}</figure>"
    )


def _new_figure(width: float = 9.0, height: float = 4.0) -> Figure:
    # A bare Figure, not pyplot: nothing is registered globally, so nothing can leak between
    # reports in a long-lived process, and no GUI backend is ever touched.
    return Figure(figsize=(width, height), layout="constrained")


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _stack(
    ax: Axes, days: list[date], series: np.ndarray, labels: Sequence[str], colours: Any
) -> None:
    """Stacked area over dates; stacked bars when there is a single date (an area needs two)."""
    if len(days) > 1:
        ax.stackplot(days, series, labels=labels, colors=colours, linewidth=0)
        return
    bottom = 0.0
    for values, label, colour in zip(series, labels, colours, strict=True):
        ax.bar(days, values, bottom=bottom, label=label, color=colour, width=0.8)
        bottom += float(values[0])


# --- header ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Champion:
    version: str | None
    card: dict[str, Any] | None
    problem: str | None = None  # why the card could not be read


def _champion(settings: Settings, day: date) -> _Champion:
    registry = Registry(settings.models_dir)
    try:
        version = registry.champion(day)
    except Exception as exc:  # a damaged champion.json: say so in the report
        return _Champion(None, None, f"the champion pointer could not be read: {exc}")
    if version is None:
        return _Champion(None, None)
    try:
        _booster, card = registry.load(version)
    except Exception as exc:  # a model folder removed or damaged by hand
        return _Champion(version, None, f"model {version} could not be loaded: {exc}")
    return _Champion(version, card if isinstance(card, dict) else None)


def _run_record(src: _Published) -> dict[str, Any] | None:
    """The latest attempt of the date in the runs listing."""
    if src.absent("runs"):
        return None
    cols = src.columns("runs")
    wanted = [
        c
        for c in (
            "run_id",
            "attempt",
            "status",
            "trigger",
            "code_version",
            "model_version",
            "policy_version",
            "error",
        )
        if c in cols
    ]
    order = "order by attempt desc" if "attempt" in cols else ""
    columns = ", ".join(f'"{c}"' for c in wanted)  # trigger is an SQL keyword: quote all
    rows = src.rows(f"select {columns} from {src.view('runs')} where dt = $d {order} limit 1")
    return dict(zip(wanted, rows[0], strict=True)) if rows else None


RUN_ID_TABLES = (
    "loan_delinquency",
    "delinquency_summary",
    "delinquency_rates",
    "roll_rates",
    "vintage",
    "limit_updates",
    "pricing_summary",
    "customer_notices",
    "data_quality",
    "model_runs",
)


def _run_ids(src: _Published) -> dict[str, list[str]]:
    """The run ids each table's partition for the date carries (one each, normally)."""
    out: dict[str, list[str]] = {}
    for table in RUN_ID_TABLES:
        if src.absent(table) or "run_id" not in src.columns(table):
            continue
        rows = src.rows(f"select distinct run_id from {src.view(table)} where dt = $d order by 1")
        if rows:
            out[table] = [str(r[0]) for r in rows]
    return out


def _header(src: _Published, champion: _Champion) -> tuple[str, str]:
    """The subtitle line and the run section."""
    day = src.day.isoformat()
    run = _run_record(src)
    ids = _run_ids(src)
    parts: list[str] = []
    if run is not None:
        run_id = str(run.get("run_id"))
        status = f"attempt {run.get('attempt', '?')}, {run.get('status', '?')}"
        subtitle_run = f"run {run_id} ({status})"
    else:
        found = sorted({i for v in ids.values() for i in v})
        run_id = found[0] if len(found) == 1 else None
        subtitle_run = (
            f"run {run_id} (from the published rows: no runs listing for {day})"
            if run_id
            else f"no run record for {day}"
        )
    champ = champion.version or "none (starter rule)"
    subtitle = f"{subtitle_run} | champion {champ}"

    meta = [("business date", day), ("run id", run_id or "n/a")]
    if run is not None:
        for k in (
            "attempt",
            "status",
            "trigger",
            "code_version",
            "model_version",
            "policy_version",
        ):
            if k in run:
                meta.append((k.replace("_", " "), run[k] if run[k] is not None else "none"))
    meta.append(("champion (registry)", champ))
    parts.append(
        '<dl class="meta">'
        + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in meta)
        + "</dl>"
    )
    if run is not None and run.get("status") not in (None, "SUCCESS"):
        parts.append(
            f'<p class="error">The latest run of {day} did not succeed: {_esc(run.get("error") or run.get("status"))}. '
            "Tables may hold an earlier successful run's rows.</p>"
        )
    mixed = {t: v for t, v in ids.items() if run_id is None or v != [run_id]}
    if ids and not mixed:
        parts.append(f"<p>Every published table for {day} carries run id {_esc(run_id)}.</p>")
    elif mixed:
        parts.append(
            '<p class="note">Some partitions for this date carry another run id than the run record '
            "(written by an earlier attempt or another run):</p>"
            + _table(("table", "run ids"), ((t, ", ".join(v)) for t, v in mixed.items()))
        )
    parts.append(_book_summary(src))
    return subtitle, "".join(parts)


def _book_summary(src: _Published) -> str:
    rows: list[tuple[str, str]] = []
    if not src.absent("loan_delinquency"):
        (loans, customers, products, balance, overdue, b30) = src.rows(
            f"""select count(*), count(distinct customer_id), count(distinct product),
                       sum(outstanding_principal), sum(overdue_amount),
                       coalesce(sum(outstanding_principal) filter (where dpd >= 30), 0)
                from {src.view("loan_delinquency")} where dt = $d"""
        )[0]
        rows += [
            ("loans with a balance", f"{loans:,}"),
            ("customers with a balance", f"{customers:,}"),
            ("products", f"{products:,}"),
            ("outstanding principal (CNY)", _money(balance)),
            ("overdue amount (CNY)", _money(overdue)),
            ("30+ principal (CNY)", f"{_money(b30)} ({_pct(b30 / balance if balance else None)})"),
        ]
    if not src.absent("limit_updates"):
        (customers, limit_new, limit_prev) = src.rows(
            f"select count(*), sum(new_limit), sum(previous_limit) from {src.view('limit_updates')} where dt = $d"
        )[0]
        rows += [
            ("customers evaluated for limits", f"{customers:,}"),
            ("total new limits (CNY)", f"{_money(limit_new)} (previous {_money(limit_prev)})"),
        ]
    if not rows:
        return _note("no loan or limit data published for this date")
    return "<h3>The book on the date</h3>" + _table(("measure", "value"), rows, numeric=(1,))


# --- delinquency charts ------------------------------------------------------------------------


def _buckets_chart(src: _Published) -> _Chart:
    if src.view("delinquency_summary") is None:
        return _Chart(note="no published delinquency_summary table yet")
    rows = src.rows(
        f"""select dt, bucket, sum(balance)::DOUBLE from {src.view("delinquency_summary")}
            group by all order by dt"""
    )
    if not rows:
        return _Chart(note="delinquency_summary has no rows up to this date")
    days = sorted({r[0] for r in rows})
    names = [*BUCKETS, *sorted({r[1] for r in rows} - set(BUCKETS))]
    pos = {d: i for i, d in enumerate(days)}
    balance = np.zeros((len(names), len(days)))
    for dt, bucket, value in rows:
        balance[names.index(bucket), pos[dt]] = value or 0.0
    total = balance.sum(axis=0)
    share = np.divide(balance, total, out=np.zeros_like(balance), where=total > 0)
    colours = list(BUCKET_COLOURS) + [GREY] * (len(names) - len(BUCKETS))

    fig = _new_figure(9, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.2, 1))
    _stack(top, days, balance, names, colours)
    top.set_ylabel("outstanding principal (CNY)")
    top.yaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    top.legend(loc="upper left", ncols=len(names), fontsize="small", frameon=False)
    # M0 dominates the balance; the delinquent buckets get a panel of their own
    _stack(bottom, days, share[1:], names[1:], colours[1:])
    bottom.set_ylabel("share of balance, M1 and worse")
    bottom.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=1))
    # from zero, and at least 1% tall: a book without arrears shows an empty band, not noise
    bottom.set_ylim(0, max(float(share[1:].sum(axis=0).max()) * 1.1, 0.01))
    _date_axis(bottom)
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
        ax.margins(x=0)

    last = len(days) - 1
    if days[last] != src.day:
        key = f"no delinquency_summary partition for {src.day}; latest is {days[last]}"
    else:
        shares = ", ".join(f"{n} {share[i, last]:.1%}" for i, n in enumerate(names))
        key = f"On {src.day}: {_money(total[last])} CNY outstanding; share of balance {shares}"
    key += f" ({len(days)} nights, {days[0]} to {days[last]})"
    return _Chart(fig, key)


def _rates_chart(src: _Published) -> _Chart:
    name = src.view("delinquency_rates")
    if name is None:
        return _Chart(note="no published delinquency_rates table yet")
    needed = {"balance", "balance_30plus", "balance_30d_ago", "accounts", "accounts_30plus"}
    if missing := needed - src.columns("delinquency_rates"):
        return _Chart(note=f"delinquency_rates lacks columns {sorted(missing)}")
    # Portfolio rates from the components (a mean of product rates would weight them wrongly);
    # the lagged rate only over products that have a balance 30 days earlier.
    rows = src.rows(
        f"""select dt,
                   (sum(balance_30plus) / nullif(sum(balance), 0))::DOUBLE,
                   (sum(balance_30plus) filter (where balance_30d_ago is not null)
                     / nullif(sum(balance_30d_ago), 0))::DOUBLE,
                   sum(accounts_30plus) / nullif(sum(accounts), 0)
            from {name} group by dt order by dt"""
    )
    if not rows:
        return _Chart(note="delinquency_rates has no rows up to this date")
    days = [r[0] for r in rows]
    coincident = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
    lagged = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=float)
    accounts = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=float)

    fig = _new_figure(9, 3.8)
    ax = fig.add_subplot()
    marker = "o" if len(days) < 40 else None
    ax.plot(
        days,
        coincident,
        color=BLUE,
        lw=2,
        marker=marker,
        ms=3,
        label="coincident: 30+ balance / balance",
    )
    if not np.isnan(lagged).all():
        ax.plot(
            days,
            lagged,
            color=RED,
            lw=2,
            ls="--",
            marker=marker,
            ms=3,
            label="lagged: 30+ balance / balance 30 days earlier",
        )
    ax.plot(days, accounts, color=GREY, lw=1, label="coincident, by accounts")
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=1))
    highest = np.nan_to_num(np.concatenate([coincident, lagged, accounts]), nan=0.0).max()
    ax.set_ylim(0, max(float(highest) * 1.1, 0.01))
    ax.set_ylabel("30+ rate")
    ax.grid(alpha=0.3)
    _date_axis(ax)
    ax.legend(loc="upper left", fontsize="small", frameon=False)

    last = rows[-1]
    if last[0] != src.day:
        return _Chart(fig, f"no delinquency_rates partition for {src.day}; latest is {last[0]}")
    lag = (
        f"lagged {_pct(last[2])} (30+ today over the balance 30 days earlier)"
        if last[2] is not None
        else "no lagged rate yet: needs 30 days of history"
    )
    return _Chart(
        fig,
        f"30+ rate {_pct(last[1])} of balance on {src.day} (coincident; {_pct(last[3])} of accounts); {lag}",
    )


def _roll_chart(src: _Published) -> _Chart:
    if why := src.absent("roll_rates"):
        return _Chart(note=why)
    rows = src.rows(
        f"""select from_bucket, to_bucket, accounts, balance_rate
            from {src.view("roll_rates")} where dt = $d"""
    )
    if not rows:
        return _Chart(note="no roll rates yet: needs 30 days of history")
    froms = [b for b in BUCKETS if b in {r[0] for r in rows}]
    froms += sorted({r[0] for r in rows} - set(froms))
    tos = [*ROLL_TO, *sorted({r[1] for r in rows} - set(ROLL_TO))]
    rate = np.zeros((len(froms), len(tos)))
    accounts = dict.fromkeys(froms, 0)
    for fb, tb, n, r in rows:
        rate[froms.index(fb), tos.index(tb)] = r or 0.0
        accounts[fb] += int(n)

    fig = _new_figure(8.5, 0.9 + 0.55 * len(froms))
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(rate, cmap="Blues", vmin=0, vmax=1, edgecolors="white", linewidth=1)
    for i in range(len(froms)):
        for j in range(len(tos)):
            if rate[i, j] > 0:
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    f"{rate[i, j]:.1%}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rate[i, j] > 0.55 else "#1f2328",
                )
    ax.set_xticks(np.arange(len(tos)) + 0.5, tos)
    ax.set_yticks(np.arange(len(froms)) + 0.5, [f"{b} (n={accounts[b]:,})" for b in froms])
    ax.invert_yaxis()
    ax.set_xlabel("bucket on the date")
    ax.set_ylabel("bucket 30 days earlier")
    fig.colorbar(mesh, ax=ax, format=ticker.PercentFormatter(1.0, decimals=0), pad=0.01)

    def at(a: str, b: str) -> str | None:
        if a in froms and b in tos:
            return f"{a} -> {b} {rate[froms.index(a), tos.index(b)]:.1%}"
        return None

    moves = [m for m in (at("M0", "M1"), at("M1", "M2"), at("M1", "M0"), at("M0", "CLOSED")) if m]
    return _Chart(fig, "Share of balance: " + "; ".join(moves))


def _vintage_chart(src: _Published) -> _Chart:
    if why := src.absent("vintage"):
        return _Chart(note=why)
    rows = src.rows(
        f"""select origination_month, months_on_book, loans, ever_30plus_rate, ever_90plus_rate
            from {src.view("vintage")} where dt = $d and ever_30plus_rate is not null
            order by origination_month, months_on_book"""
    )
    if not rows:
        return _Chart(note=f"the vintage partition for {src.day} is empty")
    months = sorted({r[0] for r in rows})
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(months)))
    fig = _new_figure(9, 4.2)
    ax = fig.add_subplot()
    for month, colour in zip(months, colours, strict=True):
        mine = [r for r in rows if r[0] == month]
        ax.plot(
            [r[1] for r in mine],
            [r[3] for r in mine],
            color=colour,
            marker="o",
            ms=3,
            lw=1.6,
            label=f"{month:%Y-%m} ({mine[0][2]:,})",
        )
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=1))
    last_mob = max(int(r[1]) for r in rows)
    # whole months only, even for a young book whose vintages have month 0 alone
    ax.xaxis.set_major_locator(ticker.MultipleLocator(1 if last_mob <= 24 else 3))
    ax.set_xlim(-0.5, last_mob + 0.5)
    ax.set_xlabel("months on book")
    ax.set_ylabel("ever 30+ (share of loans)")
    ax.set_ylim(0, max(max(float(r[3]) for r in rows) * 1.1, 0.01))
    ax.grid(alpha=0.3)
    ax.legend(
        title="vintage (loans)",
        fontsize="small",
        ncols=1 + len(months) // 12,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        frameon=False,
    )

    oldest = [r for r in rows if r[0] == months[0]][-1]
    key = (
        f"{len(months)} vintage{'s' if len(months) > 1 else ''}; oldest {months[0]:%Y-%m} ({oldest[2]:,} loans) after "
        f"{oldest[1]} months on book: ever 30+ {_pct(oldest[3])}, ever 90+ {_pct(oldest[4])}"
    )
    at3 = [(r[0], r[3]) for r in rows if r[1] == 3]
    if len(at3) > 1:
        lo, hi = min(at3, key=lambda v: v[1]), max(at3, key=lambda v: v[1])
        key += f"; at 3 months on book from {_pct(lo[1])} ({lo[0]:%Y-%m}) to {_pct(hi[1])} ({hi[0]:%Y-%m})"
    return _Chart(fig, key)


# --- model charts ------------------------------------------------------------------------------


def _scores_chart(src: _Published, champion: _Champion) -> _Chart:
    if why := src.absent("limit_updates"):
        return _Chart(note=why)
    name = src.view("limit_updates")
    total, scored, versions = src.rows(
        f"""select count(*), count(score), string_agg(distinct model_version, ', ')
            from {name} where dt = $d"""
    )[0]
    if total == 0:
        return _Chart(note=f"the limit_updates partition for {src.day} is empty")
    if scored == 0:
        return _Chart(
            note=f"no scores on {src.day}: pd, score and risk grade are null for all {total:,} "
            "customers, and their limits follow the policy's starter rule"
        )
    rows = src.rows(f"select score, risk_grade from {name} where dt = $d and score is not null")
    scores = np.array([r[0] for r in rows], dtype=float)
    fig = _new_figure(9, 3.8)
    ax = fig.add_subplot()
    lo, hi = float(scores.min()), float(scores.max())
    bins = np.linspace(lo, hi + 1, min(50, max(int(hi - lo) + 2, 2)))
    ax.hist(scores, bins=bins, color=BLUE, alpha=0.85)
    # grade boundaries on the points scale (a higher pd is a lower score)
    for (grade, bound), next_grade in zip(GRADES, GRADE_ORDER[1:], strict=True):
        edge = float(points(np.array([bound]))[0])
        if lo <= edge <= hi:
            ax.axvline(edge, color=GREY, lw=0.8, ls=":")
            ax.text(
                edge,
                1.0,
                f" {next_grade}|{grade} ",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                color="#555555",
            )
    ax.set_xlabel("score (600 = odds 50:1, +20 points doubles the odds)")
    ax.set_ylabel("customers")
    ax.grid(axis="y", alpha=0.3)

    counts: dict[str, int] = {}
    for _, grade in rows:
        counts[grade or "none"] = counts.get(grade or "none", 0) + 1
    mix = ", ".join(
        f"{g} {counts[g] / len(rows):.0%}" for g in (*GRADE_ORDER, "none") if g in counts
    )
    key = (
        f"{scored:,} of {total:,} customers scored by {versions or 'unknown model'}; "
        f"median score {np.median(scores):.0f}; grades {mix}"
    )
    if champion.version and versions and champion.version not in versions:
        key += f" (the registry's champion for the date is {champion.version})"
    return _Chart(fig, key)


def _card_missing(champion: _Champion, keys: Sequence[str]) -> str | None:
    """A note when there is no card to draw from, or it lacks a needed key."""
    if champion.version is None:
        return champion.problem or NO_CHAMPION
    if champion.card is None:
        return champion.problem or f"the card of {champion.version} could not be read"
    missing = [k for k in keys if not champion.card.get(k)]
    if missing:
        return f"the model card of {champion.version} has no {', '.join(missing)} (a card written before it was kept, or a hand-made one)"
    return None


def _roc_chart(champion: _Champion) -> _Chart:
    if note := _card_missing(champion, ("roc",)):
        metrics = (champion.card or {}).get("metrics") or {}
        key = (
            f"AUC {_fmt3(_num(metrics, 'auc'))}, KS {_fmt3(_num(metrics, 'ks'))} from the card"
            if metrics
            else ""
        )
        return _Chart(note=note, key=key)
    assert champion.card is not None
    roc = champion.card["roc"]
    fpr = np.asarray(roc.get("fpr") or [], dtype=float)
    tpr = np.asarray(roc.get("tpr") or [], dtype=float)
    if len(fpr) < 2 or len(fpr) != len(tpr):
        return _Chart(note=f"the ROC curve in the card of {champion.version} is malformed")
    metrics = champion.card.get("metrics") or {}
    auc = _num(metrics, "auc")
    auc_text = (
        f"AUC {auc:.3f}"
        if auc is not None
        else f"AUC {np.trapezoid(tpr, fpr):.3f} (from the stored curve)"
    )
    k = int(np.argmax(tpr - fpr))  # KS: the largest gap between bads caught and goods flagged
    # The stored curve is thinned, so its largest gap can fall short of the card's KS (computed
    # on every point): the line marks where the gap is, the label gives the card's figure.
    ks = _num(metrics, "ks")
    ks_label = ks if ks is not None else float(tpr[k] - fpr[k])

    fig = _new_figure(5.4, 5.0)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color=BLUE, lw=2, label=f"{champion.version}, {auc_text}")
    ax.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--", label="random")
    ax.vlines(fpr[k], fpr[k], tpr[k], color=RED, lw=2, label=f"KS {ks_label:.3f}")
    ax.annotate(
        f"KS {ks_label:.3f}\nat FPR {fpr[k]:.2f}, TPR {tpr[k]:.2f}",
        xy=(fpr[k], (fpr[k] + tpr[k]) / 2),
        xytext=(10, -20),
        textcoords="offset points",
        color=RED,
        fontsize=9,
        arrowprops={"arrowstyle": "-", "color": RED, "lw": 0.8},
    )
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
    ax.set_xlabel("false positive rate (goods flagged)")
    ax.set_ylabel("true positive rate (bads caught)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")

    windows = champion.card.get("windows") or {}
    window = (
        f"{windows['oot_start']} to {windows['oot_end']}"
        if windows.get("oot_start") and windows.get("oot_end")
        else "window not in the card"
    )
    n, bad = _num(metrics, "n"), _num(metrics, "bad_rate")
    key = (
        f"{auc_text}, KS {ks_label:.3f}, Gini {_fmt3(_num(metrics, 'gini'))}, "
        f"Brier {_fmt3(_num(metrics, 'brier'))} out of time ({window}"
        + (f", n={n:,.0f}" if n is not None else "")
        + (f", bad rate {bad:.1%}" if bad is not None else "")
        + ")"
    )
    return _Chart(fig, key)


def _calibration_chart(champion: _Champion) -> _Chart:
    if note := _card_missing(champion, ("calibration",)):
        return _Chart(note=note)
    assert champion.card is not None
    table = [
        r
        for r in champion.card["calibration"]
        if isinstance(r, dict)
        and _num(r, "predicted") is not None
        and _num(r, "observed") is not None
    ]
    if not table:
        return _Chart(note=f"the calibration table in the card of {champion.version} is malformed")
    pred = np.array([_num(r, "predicted") for r in table], dtype=float)
    obs = np.array([_num(r, "observed") for r in table], dtype=float)
    n = np.array([_num(r, "n") or 1.0 for r in table], dtype=float)
    deciles = [int(_num(r, "decile") or i + 1) for i, r in enumerate(table)]
    top = max(float(pred.max()), float(obs.max()), 0.01) * 1.08

    fig = _new_figure(5.4, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, top], [0, top], color=GREY, lw=1, ls="--", label="perfect calibration")
    ax.plot(pred, obs, color=ORANGE, marker="o", lw=1.6, label="observed bad rate")
    for x, y, d in zip(pred, obs, deciles, strict=True):
        ax.annotate(
            str(d), (x, y), xytext=(4, -10), textcoords="offset points", fontsize=7, color=GREY
        )
    ax.set(xlim=(0, top), ylim=(0, top), aspect="equal")
    ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("mean predicted PD in the decile")
    ax.set_ylabel("observed bad rate")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")

    worst = int(np.argmax(np.abs(obs - pred)))
    key = (
        f"Mean predicted PD {np.average(pred, weights=n):.2%} vs observed bad rate "
        f"{np.average(obs, weights=n):.2%}; largest gap in decile {deciles[worst]}: "
        f"predicted {pred[worst]:.2%}, observed {obs[worst]:.2%}"
    )
    return _Chart(fig, key)


def _card_details(champion: _Champion) -> str:
    """The champion's card in brief: what it is, how it was chosen, what drives it."""
    if champion.version is None:
        return _note(champion.problem or NO_CHAMPION)
    if champion.card is None:
        return _note(champion.problem or f"the card of {champion.version} could not be read")
    card = champion.card
    windows = card.get("windows") or {}
    decision = card.get("decision") or {}
    metrics = card.get("metrics") or {}
    rows = [
        ("version", champion.version),
        ("trained as of", card.get("trained_as_of", "n/a")),
        (
            "training window",
            f"{windows.get('train_start', '?')} to {windows.get('train_end', '?')}",
        ),
        ("out-of-time window", f"{windows.get('oot_start', '?')} to {windows.get('oot_end', '?')}"),
        (
            "observations (train / out of time)",
            f"{card.get('n_train', 'n/a')} / {card.get('n_oot', 'n/a')}",
        ),
        (
            "AUC / KS / Gini",
            f"{_fmt3(_num(metrics, 'auc'))} / {_fmt3(_num(metrics, 'ks'))} / {_fmt3(_num(metrics, 'gini'))}",
        ),
        ("PSI train vs out of time", _fmt3(_num(card, "psi_train_vs_oot"))),
        ("promotion decision", decision.get("reason", "n/a (promoted by hand?)")),
        ("code version", card.get("code_version", "n/a")),
    ]
    wanted = ("metrics", "windows", "calibration", "roc", "importance_gain")
    missing = [k for k in wanted if not card.get(k)]
    out = _table(("model card", ""), rows)
    if missing:
        out += _note(f"the model card lacks {', '.join(missing)}; the charts needing them say so")
    gain = card.get("importance_gain")
    if isinstance(gain, dict) and gain:
        top = sorted(gain.items(), key=lambda kv: -float(kv[1]))[:10]
        total = sum(float(v) for v in gain.values()) or 1.0
        out += "<h3>Top features by gain</h3>" + _table(
            ("feature", "gain", "share"),
            ((f, f"{float(g):,.1f}", f"{float(g) / total:.1%}") for f, g in top),
            numeric=(1, 2),
        )
    return out


# --- limits charts -----------------------------------------------------------------------------


def _actions_chart(src: _Published) -> _Chart:
    if why := src.absent("limit_updates"):
        return _Chart(note=why)
    name = src.view("limit_updates")
    rows = dict(src.rows(f"select action, count(*) from {name} where dt = $d group by 1"))
    total = sum(rows.values())
    if total == 0:
        return _Chart(note=f"the limit_updates partition for {src.day} is empty")
    actions = [*ACTIONS, *sorted(set(rows) - set(ACTIONS))]
    counts = [rows.get(a, 0) for a in actions]
    colours = {
        "NEW": "#2e8b57",
        "INCREASE": "#57a773",
        "DECREASE": ORANGE,
        "UNCHANGED": GREY,
        "FREEZE": RED,
        "CLOSE": "#5b2333",
    }
    fig = _new_figure(9, 3.2)
    ax = fig.add_subplot()
    bars = ax.barh(actions, counts, color=[colours.get(a, BLUE) for a in actions])
    ax.bar_label(bars, labels=[f"{c:,} ({c / total:.1%})" for c in counts], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("customers")
    ax.set_xlim(0, max(counts) * 1.2)
    ax.grid(axis="x", alpha=0.3)

    rules = src.rows(
        f"""select policy_rule, count(*) as n from {name} where dt = $d
            group by 1 order by n desc, 1 limit 8"""
    )
    extra = "<h3>Rules that set the final limit</h3>" + _table(
        ("policy rule", "customers", "share"),
        ((r, f"{n:,}", f"{n / total:.1%}") for r, n in rules),
        numeric=(1, 2),
    )
    key = f"{total:,} customers: " + ", ".join(
        f"{a} {c:,} ({c / total:.1%})" for a, c in zip(actions, counts, strict=True) if c
    )
    return _Chart(fig, key, extra=extra)


def _limits_chart(src: _Published) -> _Chart:
    if why := src.absent("limit_updates"):
        return _Chart(note=why)
    rows = src.rows(
        f"""select coalesce(risk_grade, '{STARTER}'), new_limit::DOUBLE
            from {src.view("limit_updates")} where dt = $d"""
    )
    if not rows:
        return _Chart(note=f"the limit_updates partition for {src.day} is empty")
    groups: dict[str, list[float]] = {}
    for grade, value in rows:
        groups.setdefault(grade, []).append(value)
    order = [g for g in (*GRADE_ORDER, STARTER) if g in groups] + sorted(
        set(groups) - {*GRADE_ORDER, STARTER}
    )
    data = [np.asarray(groups[g]) for g in order]
    medians = [float(np.median(v)) for v in data]

    fig = _new_figure(9, 3.8)
    ax = fig.add_subplot()
    ax.boxplot(
        data,
        tick_labels=[f"{g}\nn={len(groups[g]):,}" for g in order],
        showfliers=False,
        widths=0.55,
        medianprops={"color": RED, "lw": 2},
    )
    for i, m in enumerate(medians, start=1):
        # right of the box (half-width 0.275), so the label never sits on its edge
        ax.annotate(
            f"{m:,.0f}",
            (i + 0.3, m),
            xytext=(3, 0),
            textcoords="offset points",
            fontsize=8,
            va="center",
            color=RED,
        )
    ax.set_ylabel("new limit (CNY)")
    ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    key = "Median new limit (CNY): " + ", ".join(
        f"{g} {m:,.0f}" for g, m in zip(order, medians, strict=True)
    )
    if order == [STARTER]:
        key += " (no risk grades: every limit follows the starter rule)"
    return _Chart(fig, key)


def _limit_trend_chart(src: _Published) -> _Chart:
    name = src.view("limit_updates")
    if name is None:
        return _Chart(note="no published limit_updates table yet")
    rows = src.rows(
        f"""select dt, sum(new_limit)::DOUBLE, sum(previous_limit)::DOUBLE,
                   count(*) filter (where action = 'INCREASE'),
                   count(*) filter (where action in ('DECREASE', 'FREEZE', 'CLOSE')
                                      and new_limit < coalesce(previous_limit, 0)),
                   count(*)
            from {name} group by dt order by dt"""
    )
    if not rows:
        return _Chart(note="limit_updates has no rows up to this date")
    days = [r[0] for r in rows]
    total = np.array([r[1] or 0.0 for r in rows])
    ups = np.array([r[3] for r in rows], dtype=float)
    downs = np.array([r[4] for r in rows], dtype=float)

    fig = _new_figure(9, 4.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.3, 1))
    top.plot(days, total, color=BLUE, lw=2)
    top.set_ylabel("total new limits (CNY)")
    top.yaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    top.set_ylim(bottom=0)
    width = 0.8 if len(days) < 120 else 1.0
    bottom.bar(days, ups, color="#57a773", width=width, label="increases")
    bottom.bar(days, -downs, color=RED, width=width, label="cuts: decrease, freeze, close")
    bottom.axhline(0, color=GREY, lw=0.8)
    bottom.set_ylabel("customers")
    bottom.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: f"{abs(v):,.0f}"))
    bottom.legend(loc="upper left", fontsize="small", frameon=False)
    _date_axis(bottom)
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)

    # a night that moves many limits at once (a first model, an interval expiring for everyone)
    busiest = int(np.argmax(ups))
    key = f"Total new limits {_money(total[-1])} CNY on {days[-1]}"
    earlier = [i for i, d in enumerate(days) if d <= days[-1] - timedelta(days=30)]
    if earlier:
        key += f" ({_money(total[earlier[-1]])} on {days[earlier[-1]]})"
    if ups[busiest] > 0:
        key += (
            f"; most increases in one night: {int(ups[busiest]):,} of {rows[busiest][5]:,} "
            f"customers on {days[busiest]} (+{_money(total[busiest] - (rows[busiest][2] or 0.0))} CNY)"
        )
    return _Chart(fig, key)


# --- pricing and notices -----------------------------------------------------------------------

PRICING_COLUMNS = (
    "risk_grade",
    "customers",
    "customers_offered",
    "mean_pd",
    "mean_offered_rate",
    "expected_loss_rate",
    "funding_rate",
    "operating_rate",
    "margin",
    "negative_margin",
    "loans_30d",
    "principal_30d",
    "realised_rate_30d",
    "loans_below_offer_30d",
    "loans_above_cap_30d",
)


def _signed_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2%}"


def _pricing_rules(src: _Published) -> tuple[list[tuple[str, int]], float | None]:
    """The date's offers by pricing rule, and the cap as the capped offers show it (None
    when no offer was capped, or limit_updates predates pricing)."""
    if src.absent("limit_updates") or not {"pricing_rule", "offered_annual_rate"} <= src.columns(
        "limit_updates"
    ):
        return [], None
    name = src.view("limit_updates")
    rules = src.rows(
        f"""select pricing_rule, count(*) as n from {name}
            where dt = $d and pricing_rule is not null group by 1 order by n desc, 1"""
    )
    cap = src.rows(
        f"""select max(offered_annual_rate)::DOUBLE from {name}
            where dt = $d and pricing_rule = 'pricing.cap'"""
    )[0][0]
    return [(str(r), int(n)) for r, n in rules], cap


def _pricing_table(rows: list[dict[str, Any]]) -> str:
    return "<h3>Pricing by grade on the date</h3>" + _table(
        (
            "grade",
            "customers",
            "offered",
            "mean pd",
            "mean rate",
            "EL rate",
            "margin",
            "flag",
            "30-day loans",
            "realised rate",
            "below offer",
            "above cap",
        ),
        (
            (
                r["risk_grade"],
                f"{r['customers']:,}",
                f"{r['customers_offered']:,}",
                _pct(r["mean_pd"], 2),
                _pct(r["mean_offered_rate"], 2),
                _pct(r["expected_loss_rate"], 2),
                _signed_pct(r["margin"]),
                "negative margin" if r["negative_margin"] else "",
                f"{r['loans_30d']:,}",
                _pct(r["realised_rate_30d"], 2),
                f"{r['loans_below_offer_30d']:,}",
                f"{r['loans_above_cap_30d']:,}",
            )
            for r in rows
        ),
        numeric=(1, 2, 3, 4, 5, 6, 8, 9, 10, 11),
        row_class=lambda r: "fail" if r[7] else None,
    )


def _pricing_chart(src: _Published) -> _Chart:
    if why := src.absent("pricing_summary"):
        return _Chart(note=why)
    if missing := set(PRICING_COLUMNS) - src.columns("pricing_summary"):
        return _Chart(note=f"pricing_summary lacks columns {sorted(missing)}")
    found = src.rows(
        f"select {', '.join(PRICING_COLUMNS)} from {src.view('pricing_summary')} where dt = $d"
    )
    if not found:
        return _Chart(note=f"the pricing_summary partition for {src.day} is empty")
    order = {g: i for i, g in enumerate(PRICING_GROUPS)}
    rows = sorted(
        (dict(zip(PRICING_COLUMNS, r, strict=True)) for r in found),
        key=lambda r: (order.get(r["risk_grade"], len(order)), str(r["risk_grade"])),
    )
    extra = _pricing_table(rows)
    rules, cap = _pricing_rules(src)
    offered = [r for r in rows if r["customers_offered"] and r["mean_offered_rate"] is not None]
    loans = sum(int(r["loans_30d"]) for r in rows)
    booked = ""
    if loans:
        principal = sum(float(r["principal_30d"] or 0) for r in rows)
        interest = sum(
            float(r["realised_rate_30d"] or 0) * float(r["principal_30d"] or 0) for r in rows
        )
        below = sum(int(r["loans_below_offer_30d"]) for r in rows)
        above = sum(int(r["loans_above_cap_30d"]) for r in rows)
        booked = (
            f"; {loans:,} loans booked in the 30 days to {src.day} at a realised "
            f"{_pct(interest / principal if principal else None, 2)} (by principal): "
            f"{below:,} below the offer in force, {above:,} above the cap"
        )
    if not offered:
        return _Chart(
            note=f"no customer was offered a rate on {src.day}",
            key=booked.lstrip("; "),
            extra=extra,
        )

    def rate(r: dict[str, Any], col: str) -> float:
        return float(r[col]) if r[col] is not None else 0.0

    labels = [str(r["risk_grade"]) for r in offered]
    x = np.arange(len(offered))
    parts = [
        ("funding_rate", "funding cost", "#c6c6c6"),
        ("operating_rate", "operating cost", GREY),
        ("expected_loss_rate", "expected loss", ORANGE),
    ]
    fig = _new_figure(9, 4.4)
    ax = fig.add_subplot()
    bottom = np.zeros(len(offered))
    for col, label, colour in parts:
        if all(r[col] is None for r in offered):
            continue  # no cost section, or no model score: nothing to stack
        values = np.array([rate(r, col) for r in offered])
        ax.bar(x, values, bottom=bottom, width=0.6, color=colour, label=label)
        bottom += values
    rates = np.array([rate(r, "mean_offered_rate") for r in offered])
    ax.scatter(x, rates, marker="D", s=46, color=BLUE, zorder=3, label="mean offered rate")
    if cap is not None:
        ax.axhline(
            cap,
            color=RED,
            lw=1.2,
            ls="--",
            label=f"cap {cap:.2%} (max_annual_rate, as the capped offers show it)",
        )
    else:
        ax.axhline(
            RATE_CEILING, color=GREY, lw=1, ls=":", label=f"contract ceiling {RATE_CEILING:.0%}"
        )
    negative = [bool(r["negative_margin"]) for r in offered]
    top = max(float(bottom.max()), float(rates.max()), cap or RATE_CEILING)
    for i, r in enumerate(offered):
        if negative[i]:
            ax.axvspan(i - 0.45, i + 0.45, color=RED, alpha=0.08, lw=0)
        if r["margin"] is not None:
            ax.annotate(
                f"margin {r['margin']:+.1%}",
                (i, max(bottom[i], rates[i])),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=RED if negative[i] else "#1f2328",
            )
    ax.set_xticks(
        x, [f"{g}\nn={r['customers_offered']:,}" for g, r in zip(labels, offered, strict=True)]
    )
    for tick, neg in zip(ax.get_xticklabels(), negative, strict=True):
        if neg:
            tick.set_color(RED)
            tick.set_fontweight("bold")
    ax.set_xlim(-0.6, len(offered) - 0.4)
    ax.set_ylim(0, top * 1.15)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("annual rate")
    ax.set_xlabel(
        "risk grade (customers offered a rate)"
        + ("; red: offers below expected loss and costs" if any(negative) else "")
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", frameon=False)

    n_offered = sum(int(r["customers_offered"]) for r in offered)
    customers = sum(int(r["customers"]) for r in rows)
    mean = float(np.average(rates, weights=[int(r["customers_offered"]) for r in offered]))
    key = f"On {src.day}: {n_offered:,} of {customers:,} customers offered a rate, mean {mean:.2%}"
    if rules:
        key += " (" + ", ".join(f"{r} {n:,}" for r, n in rules) + ")"
    bad = [g for g, neg in zip(labels, negative, strict=True) if neg]
    if bad:
        key += f"; negative margin in {', '.join(bad)}"
    elif all(r["margin"] is None for r in offered):
        key += "; no margin: no expected loss without a model score, or no cost section"
    else:
        key += "; every grade's offers cover expected loss and costs"
    if cap is None and rules:
        key += "; no offer reached the cap"
    return _Chart(fig, key + booked, extra=extra)


def _notice_counts(src: _Published) -> str:
    """The date's notices by type: notices, customers, amount and first send time."""
    if why := src.absent("customer_notices"):
        return _note(why)
    found = {
        r[0]: r[1:]
        for r in src.rows(
            f"""select notice_type, count(*), count(distinct customer_id), sum(amount_due),
                       strftime(timezone('Asia/Shanghai', min(send_after)), '%Y-%m-%d %H:%M')
                from {src.view("customer_notices")} where dt = $d group by 1"""
        )
    }
    types = [*NOTICE_TYPES, *sorted(set(found) - set(NOTICE_TYPES))]
    body = []
    for t in types:
        n, customers, amount, first = found.get(t, (0, 0, None, None))
        body.append(
            (
                t,
                f"{n:,}",
                f"{customers:,}",
                _money(amount) if amount is not None else "",
                first or "",
            )
        )
    return f"<h3>Notices for {src.day.isoformat()} by type</h3>" + _table(
        ("notice type", "notices", "customers", "amount due (CNY)", "first send (Asia/Shanghai)"),
        body,
        numeric=(1, 2, 3),
    )


def _notices_chart(src: _Published) -> _Chart:
    name = src.view("customer_notices")
    if name is None:
        return _Chart(note="no published customer_notices table yet")
    extra = _guard("the notice counts", lambda: _notice_counts(src))
    days = src.partition_dates("customer_notices")
    if not days:
        return _Chart(note=f"no customer_notices partition up to {src.day}", extra=extra)
    rows = src.rows(f"select dt, notice_type, count(*) from {name} group by all")
    types = [*NOTICE_TYPES, *sorted({str(r[1]) for r in rows} - set(NOTICE_TYPES))]
    pos = {d: i for i, d in enumerate(days)}
    counts = np.zeros((len(types), len(days)))
    for dt, kind, n in rows:
        if dt in pos:
            counts[types.index(kind), pos[dt]] = n
    total = counts.sum(axis=0)
    span = (
        f"{len(days)} nights, {days[0]} to {days[-1]}" if len(days) > 1 else f"1 night, {days[0]}"
    )
    if not total.any():
        return _Chart(note=f"no notices in {span}", extra=extra)

    fig = _new_figure(9, 4.0)
    ax = fig.add_subplot()
    bottom = np.zeros(len(days))
    for i, kind in enumerate(types):
        if counts[i].any():
            colour = NOTICE_COLOURS.get(kind, GREY)
            ax.bar(days, counts[i], bottom=bottom, width=0.8, color=colour, label=kind, lw=0)
            bottom += counts[i]
    ax.set_ylabel("notices")
    ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    ax.grid(axis="y", alpha=0.3)
    # half a day either side of the bars and no more: no tick outside the nights shown (a
    # report names no date after its own)
    pad = timedelta(hours=14)
    ax.set_xlim(datetime.combine(days[0], time()) - pad, datetime.combine(days[-1], time()) + pad)
    if days[-1] - days[0] < timedelta(days=7):
        # a few nights (the first ones after notices began): whole days, never hours
        ax.xaxis.set_major_locator(mdates.DayLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    else:
        _date_axis(ax)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)

    if days[-1] != src.day:
        key = f"no customer_notices partition for {src.day}; latest is {days[-1]}"
    else:
        last = len(days) - 1
        mix = ", ".join(
            f"{t} {int(counts[i, last]):,}" for i, t in enumerate(types) if counts[i, last]
        )
        key = f"{int(total[last]):,} notices for {src.day}" + (f": {mix}" if mix else "")
    busiest = int(np.argmax(total))
    if len(days) > 1:
        span += f"; most on {days[busiest]}: {int(total[busiest]):,}"
    key += f" ({span})"
    return _Chart(fig, key, extra=extra)


# --- tables ------------------------------------------------------------------------------------


def _data_quality(src: _Published) -> str:
    if why := src.absent("data_quality"):
        return _note(why)
    rows = src.rows(
        f"""select extract, "check", success, rows_checked, rows_failed, rows_quarantined
            from {src.view("data_quality")} where dt = $d
            order by success, extract, "check" """
    )
    if not rows:
        return _note(f"the data_quality partition for {src.day} is empty")
    failed = [r for r in rows if not r[2]]
    # A row breaking two rules counts in both checks: per-check figures are not summed as rows.
    worst = max(rows, key=lambda r: int(r[5] or 0))
    key = f"{len(rows)} checks on {src.day}: {len(failed)} failed"
    key += (
        f"; most rows quarantined by {worst[1]} ({int(worst[5]):,} of {int(worst[3] or 0):,})"
        if worst[5]
        else "; no row quarantined"
    )
    extracts: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        extracts.setdefault(str(r[0]), []).append(r)
    summary = _table(
        ("extract", "checks", "failed", "rows checked", "most rows failing one check"),
        (
            (
                e,
                len(rs),
                sum(1 for r in rs if not r[2]),
                f"{max(int(r[3] or 0) for r in rs):,}",
                f"{max(int(r[4] or 0) for r in rs):,}",
            )
            for e, rs in sorted(extracts.items())
        ),
        numeric=(1, 2, 3, 4),
        row_class=lambda r: "fail" if r[2] else None,
    )

    def detail(subset: list[tuple[Any, ...]]) -> str:
        return _table(
            ("extract", "check", "result", "rows checked", "rows failed", "rows quarantined"),
            (
                (e, c, "pass" if ok else "FAIL", f"{n or 0:,}", f"{f or 0:,}", f"{q or 0:,}")
                for e, c, ok, n, f, q in subset
            ),
            numeric=(3, 4, 5),
            row_class=lambda r: "fail" if r[2] == "FAIL" else None,
        )

    failures = "<h3>Failed checks</h3>" + detail(failed) if failed else "<p>Every check passed.</p>"
    # <details> folds the long list without any script
    everything = f"<details><summary>All {len(rows)} checks</summary>{detail(rows)}</details>"
    return f'<p class="key">{_esc(key)}</p>{summary}{failures}{everything}'


def _model_runs(src: _Published) -> str:
    name = src.view("model_runs")
    if name is None:
        return _note("no published model_runs table yet: no training has been attempted")
    cols = src.columns("model_runs")
    wanted = [
        c
        for c in ("dt", "model_version", "auc", "ks", "psi", "promoted", "decision_reason")
        if c in cols
    ]
    rows = src.rows(f"select {', '.join(wanted)} from {name} order by dt desc limit 15")
    if not rows:
        return _note("no training decisions up to this date")

    def cell(col: str, value: object) -> object:
        if isinstance(value, float):
            return f"{value:.3f}"
        if col == "promoted":
            return "yes" if value else "no"
        return "" if value is None else value

    body = [[cell(c, v) for c, v in zip(wanted, r, strict=True)] for r in rows]
    numeric = [i for i, c in enumerate(wanted) if c in ("auc", "ks", "psi")]
    return "<p>The latest training decisions, newest first.</p>" + _table(wanted, body, numeric)


# --- the page ----------------------------------------------------------------------------------


def _section(sid: str, title: str, body: str) -> tuple[str, str, str]:
    return sid, title, f'<section id="{sid}"><h2>{_esc(title)}</h2>{body}</section>'


def _guard(what: str, render: Callable[[], str]) -> str:
    try:
        return render()
    except Exception as exc:  # a broken table must not cost the night its whole report
        log.exception("report section %s failed", what)
        return f'<p class="error">{_esc(what)} could not be shown: {_esc(type(exc).__name__)}: {_esc(exc)}</p>'


def render_report(settings: Settings, business_date: date) -> str:
    """The report's HTML for a business date (what ``write_report`` writes)."""
    day = business_date
    champion = _champion(settings, day)
    with duckdb.connect() as con:
        src = _Published(con, settings.published_dir, day)
        subtitle, run_html = "", ""
        try:
            subtitle, run_html = _header(src, champion)
        except Exception as exc:  # the header is informative, the charts still matter
            log.exception("report header failed")
            run_html = f'<p class="error">run information could not be read: {_esc(exc)}</p>'
        model_intro = (
            _note(f"{NO_CHAMPION}.")
            if champion.version is None
            else f"<p>Champion in force for {day}: <b>{_esc(champion.version)}</b> (from the model registry).</p>"
        )
        sections = [
            _section("run", "Run", run_html),
            _section(
                "delinquency",
                "Delinquency",
                _figure("fig-buckets", lambda: _buckets_chart(src))
                + _figure("fig-rates", lambda: _rates_chart(src))
                + _figure("fig-roll", lambda: _roll_chart(src))
                + _figure("fig-vintage", lambda: _vintage_chart(src)),
            ),
            _section(
                "model",
                "Model",
                model_intro
                + _figure("fig-scores", lambda: _scores_chart(src, champion))
                + _figure("fig-roc", lambda: _roc_chart(champion))
                + _figure("fig-calibration", lambda: _calibration_chart(champion))
                + _guard("the model card", lambda: _card_details(champion)),
            ),
            _section(
                "limits",
                "Limits",
                _figure("fig-actions", lambda: _actions_chart(src))
                + _figure("fig-limits", lambda: _limits_chart(src))
                + _figure("fig-limit-trend", lambda: _limit_trend_chart(src)),
            ),
            _section("pricing", "Pricing", _figure("fig-pricing", lambda: _pricing_chart(src))),
            _section("notices", "Notices", _figure("fig-notices", lambda: _notices_chart(src))),
            _section(
                "data-quality", "Data quality", _guard("data quality", lambda: _data_quality(src))
            ),
            _section(
                "training", "Training decisions", _guard("model runs", lambda: _model_runs(src))
            ),
        ]
    toc = "".join(f'<li><a href="#{sid}">{_esc(title)}</a></li>' for sid, title, _ in sections)
    title = f"creditflow report {day.isoformat()}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # nothing may be fetched: the page must be complete offline
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        '<link rel="icon" href="data:,">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_esc(title)}</h1><p class="sub">{_esc(subtitle)}</p>'
        f"<nav><b>Contents</b><ol>{toc}</ol></nav></header>"
        + "".join(s for _, _, s in sections)
        + "</body></html>\n"
    )


def report_path(settings: Settings, business_date: date) -> Path:
    return settings.published_dir / REPORTS_DIR / f"report-{business_date.isoformat()}.html"


def write_report(settings: Settings, business_date: date) -> Path:
    """Write ``<published>/_reports/report-YYYY-MM-DD.html`` atomically; return its path."""
    matplotlib.use("Agg")  # headless: never open a window, whatever the environment says
    page = render_report(settings, business_date)
    path = report_path(settings, business_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    # same folder, so the rename is atomic: a reader sees the old report or the new one
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex}")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(page)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)  # os.replace: atomic within one file system
    finally:
        tmp.unlink(missing_ok=True)
    return path

"""The short summary the demo (and a person after a backfill) reads: where, how good, what mix."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from rich.table import Table

from creditflow.models.registry import Registry
from creditflow.policy.decisions import action_counts, first_with_action, limits_by_grade
from creditflow.policy.notice_queries import notice_mix
from creditflow.policy.pricing import describe_offers, offered_rates
from creditflow.settings import Settings
from creditflow.transforms.reports import bucket_mix
from creditflow.warehouse import open_warehouse


def demo_summary(console: Console, settings: Settings, last: date) -> None:
    published = settings.published_dir
    tables = sorted(
        p.name for p in published.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    where = Table(
        "output", "partitions", "path", title="published (Parquet, one partition per date)"
    )
    for name in tables:
        parts = len(list((published / name).glob("dt=*/*.parquet")))
        if parts:
            where.add_row(name, str(parts), str((published / name).resolve()))
    console.print(where)

    registry = Registry(settings.models_dir)
    champion = registry.champion()
    if champion is None:
        console.print(
            "model: no champion yet (too little matured history); limits follow the starter rule"
        )
    else:
        _, card = registry.load(champion)
        m, w = card["metrics"], card["windows"]
        console.print(
            f"model: champion [bold]{champion}[/], out-of-time AUC [bold]{m['auc']:.3f}[/], "
            f"KS {m['ks']:.3f}, Gini {m['gini']:.3f} on {w['oot_start']} .. {w['oot_end']} "
            f"({len(registry.versions())} versions trained)",
            soft_wrap=True,
        )

    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        buckets = bucket_mix(con, last)
        actions = action_counts(con, last)
        by_grade = limits_by_grade(con, last)
        example = first_with_action(con, last, "DECREASE")
        mix = notice_mix(con, last)
        rates = offered_rates(con, last)

    t = Table(
        "bucket", "accounts", "balance (CNY)", "share of balance", title=f"delinquency on {last}"
    )
    for b, n, bal, share in buckets:
        t.add_row(b, f"{n:,}", f"{bal:,.2f}", f"{share:.1%}")
    console.print(t)
    t = Table("action", f"on {last}", "all nights", title="limit actions")
    for a, tonight, total in actions:
        t.add_row(a, f"{tonight:,}", f"{total:,}")
    console.print(t)
    t = Table("grade", "customers", "median limit", "mean limit", "max limit", "limit 0", title=f"limits by risk grade on {last}")  # fmt: skip
    for g, n, med, mean, mx, zero in by_grade:
        t.add_row(g, f"{n:,}", f"{med:,.0f}", f"{mean:,.0f}", f"{mx:,.0f}", f"{zero:,}")
    console.print(t)
    console.print(offers_line(last, rates), soft_wrap=True, highlight=False)
    console.print(notices_line(last, mix), soft_wrap=True, highlight=False)

    console.print("\nOpen the results:")
    console.print(
        f"  duckdb -c \"select action, count(*) from read_parquet('{published.resolve()}/limit_updates/*/*.parquet', hive_partitioning=true) where dt = '{last}' group by 1\"",
        soft_wrap=True,
    )
    console.print(
        f"  python -c \"import polars as pl; print(pl.scan_parquet('{published.resolve()}/delinquency_summary/').filter(pl.col('dt') == pl.date({last.year}, {last.month}, {last.day})).collect())\"",
        soft_wrap=True,
    )
    if example:
        console.print(f"  creditflow limits explain {example} --date {last}", soft_wrap=True)
    if mix:
        console.print(f"  creditflow notices --date {last}", soft_wrap=True)
    console.print("  creditflow runs    creditflow model list", soft_wrap=True)
    report = published / "_reports" / f"report-{last}.html"
    if report.exists():
        console.print(f"  Run report (charts, opens offline): {report.resolve()}", soft_wrap=True)
    docs = published / "data_docs" / f"dt={last}" / "index.html"
    if docs.exists():
        console.print(f"  Data Docs: {docs.resolve()}", soft_wrap=True)


def notices_line(
    d: date, by_type: dict[str, int], added: int = 0, withdrawn: int = 0, changed: int = 0
) -> str:
    """The notices of a night in one line: how many, of which types (those with any), and
    what a rerun added or withdrew."""
    if not by_type:
        return f"notices on {d}: none computed"
    kinds = ", ".join(f"{t} {n:,}" for t, n in by_type.items() if n)
    rerun = (
        f"; the rerun added {added:,}, withdrew {withdrawn:,} and changed {changed:,}"
        if added or withdrawn or changed
        else ""
    )
    return f"notices on {d}: {sum(by_type.values()):,}" + (f" ({kinds})" if kinds else "") + rerun


def offers_line(d: date, rates: dict[str, object] | None) -> str:
    """The night's offered rates in one line: their range and the rules that set them."""
    return f"offered rates on {d}: {describe_offers(rates)}"


def night_offers_line(settings: Settings, d: date) -> str:
    """``offers_line`` of a date, read from the warehouse (after a run)."""
    with open_warehouse(settings.warehouse_path, read_only=True, wait_seconds=30) as con:
        return offers_line(d, offered_rates(con, d))

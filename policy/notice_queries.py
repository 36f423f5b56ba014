"""What readers ask of the stored notices and offers: ``creditflow notices``, the demo summary
and the run's artifacts.

Every function only reads, so it works on a read-only connection, and creates no table: on a
warehouse from before notices (or pricing) existed it answers "nothing computed" instead of
failing. ``policy.notices`` writes what these read (``customer_notices``, ``notice_revisions``,
``notice_nights``); the offers are ``limit_decisions.offered_annual_rate`` and
``pricing_rule`` (``policy.pricing``). Every query takes its values as parameters.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb

from creditflow.policy.notice_types import NOTICE_TYPES
from creditflow.policy.notices import PUBLISHED_NOTICES
from creditflow.policy.pricing import PRICING_RULES
from creditflow.warehouse import has_table

REVISION_COLUMNS = ("run_id", "change", "notice_id", "notice_type", "customer_id")


def notice_runs(con: duckdb.DuckDBPyConnection, d: date) -> list[str]:
    """The runs that computed the notices of ``d``, by run id; empty when none did (the date
    was not run since notices exist). More than one: the date was rerun."""
    if not has_table(con, "notice_nights"):
        return []
    rows = con.execute(
        "select distinct run_id from notice_nights where dt = $d order by run_id", {"d": d}
    ).fetchall()
    return [r[0] for r in rows]


def stored_notices(
    con: duckdb.DuckDBPyConnection,
    d: date,
    notice_type: str | None = None,
    customer_id: str | None = None,
) -> list[dict[str, object]]:
    """The notices of ``d`` in the published columns (``send_after`` in the connection's time
    zone, Asia/Shanghai in a warehouse connection), optionally of one type and one customer;
    ordered by type (in ``NOTICE_TYPES`` order), customer and notice id."""
    if not has_table(con, "customer_notices"):
        return []
    rel = con.sql(
        f"select {', '.join(PUBLISHED_NOTICES)} from customer_notices "
        "where dt = $d and ($t::VARCHAR is null or notice_type = $t) "
        "and ($c::VARCHAR is null or customer_id = $c) "
        "order by list_position($types, notice_type), customer_id, notice_id",
        params={"d": d, "t": notice_type, "c": customer_id, "types": list(NOTICE_TYPES)},
    )
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def notice_mix(con: duckdb.DuckDBPyConnection, d: date) -> dict[str, int]:
    """How many notices of each type ``d`` has, every type named (0 when none); empty when
    the date's notices were never computed."""
    if not notice_runs(con, d):
        return {}
    counts = dict(
        con.execute(
            "select notice_type, count(*) from customer_notices where dt = $d group by 1",
            {"d": d},
        ).fetchall()
    )
    return {t: int(counts.get(t, 0)) for t in NOTICE_TYPES}


def notice_revisions(
    con: duckdb.DuckDBPyConnection,
    d: date,
    notice_type: str | None = None,
    customer_id: str | None = None,
) -> list[dict[str, object]]:
    """What each rerun of ``d`` changed (``REVISION_COLUMNS``: change is ADDED or WITHDRAWN),
    optionally of one type and one customer, by run, change and notice id. Empty when the
    date was run once (or never). ``policy.notices.revisions`` answers the same for a writer,
    but creates the tables first, which a read-only connection refuses."""
    if not has_table(con, "notice_revisions"):
        return []
    rel = con.sql(
        f"select {', '.join(REVISION_COLUMNS)} from notice_revisions "
        "where dt = $d and ($t::VARCHAR is null or notice_type = $t) "
        "and ($c::VARCHAR is null or customer_id = $c) "
        "order by run_id, change, notice_id",
        params={"d": d, "t": notice_type, "c": customer_id},
    )
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def offered_rates(con: duckdb.DuckDBPyConnection, d: date) -> dict[str, object] | None:
    """The offers of ``d``: ``priced`` (limits with a rate), ``lowest`` and ``highest``
    offered_annual_rate (Decimal), ``by_rule`` (priced limits per pricing_rule, in
    ``PRICING_RULES`` order), ``no_rate`` (limits of 0, which get none) and ``unpriced``
    (limits above 0 without a rate: decided before pricing existed). None when ``d`` has no
    decisions, or the warehouse predates pricing (migration 3 not applied yet).

    (A pricing query: it belongs beside ``pricing_summary`` in ``policy.pricing``; it lives
    here until that file's owner moves it.)"""
    priced_columns = con.execute(
        "select count(*) from duckdb_columns() "
        "where table_name = 'limit_decisions' and column_name = 'offered_annual_rate'"
    ).fetchall()[0][0]
    if not priced_columns:
        return None
    rows = con.execute(
        """select pricing_rule, count(*), min(offered_annual_rate), max(offered_annual_rate),
                  count(*) filter (where new_limit = 0),
                  count(*) filter (where new_limit > 0 and offered_annual_rate is null)
           from limit_decisions where dt = $d group by 1
           order by list_position($rules, pricing_rule) nulls last""",
        {"d": d, "rules": list(PRICING_RULES)},
    ).fetchall()
    if not rows:
        return None
    priced = [r for r in rows if r[0] is not None]
    lows: list[Decimal] = [r[2] for r in priced if r[2] is not None]
    highs: list[Decimal] = [r[3] for r in priced if r[3] is not None]
    return {
        "priced": sum(r[1] for r in priced),
        "lowest": min(lows) if lows else None,
        "highest": max(highs) if highs else None,
        "by_rule": {r[0]: r[1] for r in priced},
        "no_rate": sum(r[4] for r in rows),
        "unpriced": sum(r[5] for r in rows),
    }

"""What readers ask of the stored notices: ``creditflow notices``, the demo summary and the
run's artifacts.

Every function only reads, so it works on a read-only connection, and creates no table: on a
warehouse from before notices existed it answers "nothing computed" instead of failing.
``policy.notices`` writes what these read (``customer_notices``, ``notice_revisions``,
``notice_nights``). Every query takes its values as parameters.
"""

from __future__ import annotations

from datetime import date

import duckdb

from creditflow.policy.notice_types import NOTICE_TYPES
from creditflow.policy.notices import PUBLISHED_NOTICES
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


def _listed(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[str, ...],
    order_by: str,
    d: date,
    notice_type: str | None,
    customer_id: str | None,
) -> list[dict[str, object]]:
    """Rows of ``table`` (a code constant) for ``d``, of one type and customer when given."""
    if not has_table(con, table):
        return []
    rel = con.sql(
        f"select {', '.join(columns)} from {table} "
        "where dt = $d and ($t::VARCHAR is null or notice_type = $t) "
        f"and ($c::VARCHAR is null or customer_id = $c) order by {order_by}",
        params={"d": d, "t": notice_type, "c": customer_id},
    )
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def stored_notices(
    con: duckdb.DuckDBPyConnection,
    d: date,
    notice_type: str | None = None,
    customer_id: str | None = None,
) -> list[dict[str, object]]:
    """The notices of ``d`` in the published columns (``send_after`` in the connection's time
    zone, Asia/Shanghai in a warehouse connection), optionally of one type and one customer;
    ordered by type (in ``NOTICE_TYPES`` order), customer and notice id."""
    types = ", ".join(f"'{t}'" for t in NOTICE_TYPES)  # code constants
    order = f"list_position([{types}], notice_type), customer_id, notice_id"
    return _listed(con, "customer_notices", PUBLISHED_NOTICES, order, d, notice_type, customer_id)


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
    """What each rerun of ``d`` changed (``REVISION_COLUMNS``: change is ADDED, WITHDRAWN or
    CHANGED), optionally of one type and one customer, by run, change and notice id. Empty
    when the date was published once (or never)."""
    order = "run_id, change, notice_id"
    return _listed(con, "notice_revisions", REVISION_COLUMNS, order, d, notice_type, customer_id)

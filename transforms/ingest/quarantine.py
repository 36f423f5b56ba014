"""Route staged rows: find the rows that break rules, and the rules each one breaks.

One scan evaluates every row rule of an extract as a boolean and keeps only failing rows,
with their list of rules (``fail_<extract>``); cascade rules then look at what that scan
held back. ``ok_<extract>`` is a view of the clean rows (an anti-join, not a copy), and
``q_<extract>`` the quarantined rows in the warehouse's quarantine layout, unparseable
lines and exact duplicates included.
"""

from __future__ import annotations

from datetime import date

import duckdb

from creditflow.transforms.ingest.rules import Rule, bind
from creditflow.transforms.ingest.staging import Staged, locate
from creditflow.warehouse import scalar


def flag_column(rule: Rule) -> str:
    return f'"{rule.id}"'


def route(con: duckdb.DuckDBPyConnection, staged: Staged, rules: list[Rule]) -> dict[str, int]:
    """Flag, split and count; returns the quarantined rows breaking each rule."""
    name, t = staged.extract.name, staged.table
    row_rules = [r for r in rules if r.phase == "row"]
    cascade = [r for r in rules if r.phase == "cascade"]
    flags = ",\n            ".join(
        f"coalesce(({bind(r.violation, t)}), false) as {flag_column(r)}" for r in row_rules
    )
    # chk_<extract>: one boolean per rule and row, computed once; narrow (no data columns)
    con.execute(
        f"create or replace table chk_{name} as select r._ord,\n            {flags}\n        from {t} r"
    )
    names = ", ".join(f"case when {flag_column(r)} then '{r.id}' end" for r in row_rules)
    any_flag = " or ".join(flag_column(r) for r in row_rules)
    con.execute(
        f"""
        create or replace table fail_{name} as
        select _ord, list_filter([{names}], lambda x: x is not null)::VARCHAR[] as _failed
        from chk_{name} where {any_flag}
        """
    )
    for rule in cascade:
        # evaluated against the failures so far, then merged in
        col = flag_column(rule)
        con.execute(f"alter table chk_{name} add column {col} BOOLEAN default false")
        con.execute(
            f"create or replace temp table _hits as select r._ord from {t} r where {bind(rule.violation, t)}"
        )
        con.execute(f"update chk_{name} set {col} = true where _ord in (select _ord from _hits)")
        con.execute(
            f"update fail_{name} set _failed = list_append(_failed, '{rule.id}') where _ord in (select _ord from _hits)"
        )
        con.execute(
            f"insert into fail_{name} select _ord, ['{rule.id}'] from _hits anti join fail_{name} using (_ord)"
        )
        con.execute("drop table _hits")
    clean = scalar(con, f"select count(*) = 0 from fail_{name}")
    # a clean file (the usual night) needs no anti-join on millions of rows
    source = t if clean else f"{t} anti join fail_{name} using (_ord)"
    con.execute(f"create or replace view ok_{name} as select * from {source}")
    _quarantine_table(con, staged)
    counts = dict(
        con.execute(
            f"select rule, count(*) from (select unnest(failed_rules) as rule from q_{name}) group by all"
        ).fetchall()
    )
    return {r.id: int(counts.get(r.id, 0)) for r in rules} | {k: int(v) for k, v in counts.items()}


def _quarantine_table(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    e = staged.extract
    name = e.name
    key = "to_json(struct_pack(" + ", ".join(f"{k} := r.{k}" for k in e.key) + "))::VARCHAR"
    record = (
        "to_json(struct_pack(" + ", ".join(f"{c} := r.{c}" for c in e.column_names) + "))::VARCHAR"
    )
    row, line = locate(staged, "r")
    con.execute(
        f"""
        create or replace table q_{name} as
        select {row} as source_row, {line} as line, {key} as natural_key, f._failed as failed_rules, {record} as record
        from fail_{name} f
        join {staged.table} r using (_ord)
        asof left join {staged.shift} s on r._ord > s.accepted_before
        union all
        select {row}, {line}, {key}, ['{name}.duplicate_row']::VARCHAR[], {record}
        from {staged.duplicates} r
        asof left join {staged.shift} s on r._ord > s.accepted_before
        union all
        select r._row, r._line, null,
               case when len(r.cast_columns) > 0 and not list_contains(r.error_types, 'TOO MANY COLUMNS')
                         and not list_contains(r.error_types, 'MISSING COLUMNS')
                    then list_transform(r.cast_columns, lambda c: '{name}.' || c || '.type')
                    else ['{name}.malformed_line'] end::VARCHAR[],
               r.csv_line
        from {staged.rejects} r
        """
    )


def quarantined_rows(
    con: duckdb.DuckDBPyConnection, business_date: date, extract: str | None = None
) -> list[dict]:
    """The quarantined rows of a date from the warehouse's ``quarantine`` table (what
    ``creditflow quarantine`` lists)."""
    rows = con.execute(
        """select extract, source_row, line, natural_key, failed_rules, record from quarantine
           where dt = $d and ($e is null or extract = $e) order by extract, source_row""",
        {"d": business_date, "e": extract},
    ).fetchall()
    return [
        {
            "extract": r[0],
            "row": r[1],
            "line": r[2],
            "key": r[3],
            "failed_rules": list(r[4]),
            "record": r[5],
        }
        for r in rows
    ]


QUALITY_COLUMNS = ("extract", "check", "success", "rows_checked", "rows_failed", "rows_quarantined")


def quality_checks(con: duckdb.DuckDBPyConnection, d: date) -> list[tuple]:
    """The date's ``data_quality`` rows, in ``QUALITY_COLUMNS``, by extract and check."""
    return con.execute(
        """select extract, "check", success, rows_checked, rows_failed, rows_quarantined
           from data_quality where dt = $d order by extract, "check" """,
        {"d": d},
    ).fetchall()

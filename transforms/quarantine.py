"""Route staged rows: each row gets the list of rules it breaks; clean rows go on, the rest wait.

One scan evaluates every row rule of an extract (``chk_<extract>``); cascade rules then
look at what the scan held back. ``ok_<extract>`` holds the clean rows, ``q_<extract>``
the quarantined ones in the warehouse's quarantine layout, unparseable lines and exact
duplicates included.
"""

from __future__ import annotations

import duckdb
from creditflow.transforms.rules import Rule
from creditflow.transforms.staging import Staged


def route(con: duckdb.DuckDBPyConnection, staged: Staged, rules: list[Rule]) -> dict[str, int]:
    """Flag, split and count; returns rows failing each rule (quarantined rows, any reason)."""
    name = staged.extract.name
    row_rules = [r for r in rules if r.phase == "row"]
    flags = ",\n            ".join(
        f"case when ({r.violation}) then '{r.id}' end" for r in row_rules
    )
    con.execute(
        f"""
        create or replace table chk_{name} as
        select r.*, list_filter([
            {flags}
        ], lambda x: x is not null)::VARCHAR[] as _failed
        from {staged.table} r
        """
    )
    for rule in (r for r in rules if r.phase == "cascade"):
        con.execute(
            f"""
            update chk_{name} as r set _failed = list_append(r._failed, '{rule.id}')
            where {rule.violation}
            """
        )
    con.execute(
        f"create or replace table ok_{name} as select * exclude (_failed) from chk_{name} where len(_failed) = 0"
    )
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
    con.execute(
        f"""
        create or replace table q_{name} as
        select r._row as source_row, r._line as line, {key} as natural_key, r._failed as failed_rules, {record} as record
        from chk_{name} r where len(r._failed) > 0
        union all
        select r._row, r._line, {key}, ['{name}.duplicate_row']::VARCHAR[], {record}
        from {staged.duplicates} r
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

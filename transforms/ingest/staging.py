"""Stage one delivered file as a typed table, keeping every row it holds accounted for.

CSV is parsed by DuckDB with the contract's types; lines that cannot be parsed (too many
or too few fields, a value that is not of its column's type) land in a rejects table with
their line number instead of failing the file. Staged rows carry ``_ord``, their position
among the parsed rows; ``locate`` turns it into the data row (as the manifest counts
rows) and physical line (the header is line 1) for the few rows that need them, so no
per-row line arithmetic is paid on millions of clean rows. Exact duplicate rows are split
off before any rule runs, so one copy survives and window rules see each row once.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from creditflow.contract import Extract
from creditflow.landing import DeliveryError, ExtractFile
from creditflow.warehouse import count_rows


@dataclass(frozen=True)
class Staged:
    extract: Extract
    fmt: str
    table: str  # view of the parsed, de-duplicated rows with _ord: what rules and GX see
    duplicates: str  # exact copies of an earlier row
    rejects: str  # unparseable lines: _row, _line, cast columns, error types, raw line
    shift: str  # (accepted_before, i): rejected lines before a parsed row, for locate()
    parsed_rows: int
    rejected_rows: int
    duplicate_rows: int

    @property
    def rows(self) -> int:
        """Data rows found in the file: what the manifest must say."""
        return self.parsed_rows + self.rejected_rows


def stage(con: duckdb.DuckDBPyConnection, f: ExtractFile) -> Staged:
    name = f.extract.name
    table, data = f"stg_{name}", f"stg_{name}_data"
    rejects, shift, dups = f"stg_{name}_rejects", f"stg_{name}_shift", f"stg_{name}_dups"
    if f.fmt == "csv":
        _stage_csv(con, f, data, rejects)
    else:
        _stage_parquet(con, f, data, rejects)
    con.execute(
        f"""
        create or replace table {shift} as
        select _line - 1 - i as accepted_before, max(i) as i
        from (select _line, row_number() over (order by _line) as i from {rejects})
        group by all
        """
    )
    # Exact copies share their key, so only rows whose key repeats are compared in full:
    # a group-by over the key, not a window over every column of every row.
    key = ", ".join(f.extract.key)
    cols = ", ".join(f.extract.column_names)
    # The keys that repeat are kept: the key_unique rule starts from them too.
    con.execute(
        f"create or replace table {table}_repeated as select {key} from {data} group by all having count(*) > 1"
    )
    con.execute(
        f"""
        create or replace table {dups} as
        select * exclude (_n) from (
            select r.*, r.rowid + 1 as _ord, row_number() over (partition by {cols} order by r.rowid) as _n
            from {data} r
            semi join {table}_repeated k using ({key})
        ) where _n > 1
        """
    )
    duplicate_rows = count_rows(con, dups)
    if duplicate_rows:
        con.execute(f"delete from {data} where rowid + 1 in (select _ord from {dups})")
    # _ord is the row's position among parsed rows: DuckDB's rowid follows file order for a
    # table created from one scan (insertion order is preserved), and costs nothing to read
    con.execute(f"create or replace view {table} as select *, rowid + 1 as _ord from {data}")
    return Staged(
        extract=f.extract,
        fmt=f.fmt,
        table=table,
        duplicates=dups,
        rejects=rejects,
        shift=shift,
        parsed_rows=count_rows(con, table) + duplicate_rows,
        rejected_rows=count_rows(con, rejects),
        duplicate_rows=duplicate_rows,
    )


def locate(staged: Staged, alias: str) -> tuple[str, str]:
    """SQL for (data row, line) of staged rows ``alias``, given ``asof left join <shift> s``.

    Parsed row k sits at data row k + (rejected lines before it); the line adds the header.
    """
    row = f"{alias}._ord + coalesce(s.i, 0)"
    line = f"{row} + 1" if staged.fmt == "csv" else "null::BIGINT"
    return row, line


def _stage_csv(con: duckdb.DuckDBPyConnection, f: ExtractFile, table: str, rejects: str) -> None:
    columns = {c.name: c.kind.duckdb for c in f.extract.columns}
    try:
        con.execute(
            f"""
            create or replace table {table} as
            select *
            from read_csv(
                $path, header = true, columns = $columns, auto_detect = false,
                delim = ',', quote = '"', escape = '"', nullstr = '', compression = 'gzip',
                -- the landing folder is named dt=...; without this DuckDB adds a dt column
                hive_partitioning = false,
                strict_mode = true, store_rejects = true,
                rejects_table = '{rejects}_errors', rejects_scan = '{rejects}_scan'
            )
            """,
            {"path": str(f.path), "columns": columns},
        )
    except duckdb.Error as exc:
        raise DeliveryError(f"{f.path}: cannot be parsed as CSV ({exc})") from exc
    # One row per rejected line: a line with several bad fields is still one row.
    con.execute(
        f"""
        create or replace table {rejects} as
        select
            line::BIGINT - 1 as _row,
            line::BIGINT as _line,
            list(distinct column_name) filter (where error_type = 'CAST') as cast_columns,
            list(distinct error_type::VARCHAR) as error_types,
            first(error_message order by column_idx) as error_message,
            first(csv_line) as csv_line
        from {rejects}_errors
        group by line
        """
    )
    con.execute(f"drop table {rejects}_errors")
    con.execute(f"drop table {rejects}_scan")


def _stage_parquet(
    con: duckdb.DuckDBPyConnection, f: ExtractFile, table: str, rejects: str
) -> None:
    # Parquet is typed: a column of the wrong type fails the delivery rather than single rows.
    casts = ", ".join(f"cast({c.name} as {c.kind.duckdb}) as {c.name}" for c in f.extract.columns)
    try:
        con.execute(
            f"create or replace table {table} as select {casts} from read_parquet($path, hive_partitioning = false)",
            {"path": str(f.path)},
        )
    except duckdb.Error as exc:
        raise DeliveryError(f"{f.path}: a column does not have its contract type ({exc})") from exc
    con.execute(
        f"""create or replace table {rejects} (
            _row BIGINT, _line BIGINT, cast_columns VARCHAR[], error_types VARCHAR[],
            error_message VARCHAR, csv_line VARCHAR)"""
    )

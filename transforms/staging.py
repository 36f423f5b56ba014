"""Stage one delivered file as a typed table, keeping every row it holds accounted for.

CSV is parsed by DuckDB with the contract's types; lines that cannot be parsed (too many
or too few fields, a value that is not of its column's type) land in a rejects table with
their line number instead of failing the file. Each staged row gets ``_row`` (its 1-based
data row in the file, as the manifest counts rows) and ``_line`` (its physical line; the
header is line 1). Exact duplicate rows are split off before any other rule runs, so one
copy survives and window rules (sums, ordering) see each row once.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from creditflow.contract import Extract
from creditflow.landing import DeliveryError, ExtractFile


@dataclass(frozen=True)
class Staged:
    extract: Extract
    table: str  # parsed, de-duplicated rows: what rules and GX see
    duplicates: str  # exact copies of an earlier row
    rejects: str  # unparseable lines: line, column, error type, raw line
    parsed_rows: int
    rejected_rows: int
    duplicate_rows: int

    @property
    def rows(self) -> int:
        """Data rows found in the file: what the manifest must say."""
        return self.parsed_rows + self.rejected_rows


def stage(con: duckdb.DuckDBPyConnection, f: ExtractFile) -> Staged:
    name = f.extract.name
    raw, rejects = f"stg_{name}_raw", f"stg_{name}_rejects"
    if f.fmt == "csv":
        _stage_csv(con, f, raw, rejects)
    else:
        _stage_parquet(con, f, raw, rejects)
    cols = ", ".join(f.extract.column_names)
    con.execute(
        f"""
        create or replace table stg_{name}_numbered as
        select *, row_number() over (partition by {cols} order by _row) > 1 as _dup from {raw}
        """
    )
    con.execute(
        f"create or replace table stg_{name} as select * exclude (_dup) from stg_{name}_numbered where not _dup"
    )
    con.execute(
        f"create or replace table stg_{name}_dups as select * exclude (_dup) from stg_{name}_numbered where _dup"
    )
    con.execute(f"drop table stg_{name}_numbered")
    parsed = _count(con, raw)
    con.execute(f"drop table {raw}")
    return Staged(
        extract=f.extract,
        table=f"stg_{name}",
        duplicates=f"stg_{name}_dups",
        rejects=rejects,
        parsed_rows=parsed,
        rejected_rows=_count(con, rejects),
        duplicate_rows=_count(con, f"stg_{name}_dups"),
    )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


def _stage_csv(con: duckdb.DuckDBPyConnection, f: ExtractFile, raw: str, rejects: str) -> None:
    columns = {c.name: c.kind.duckdb for c in f.extract.columns}
    try:
        con.execute(
            f"""
            create or replace table {raw}_parsed as
            select *, row_number() over () as _ordinal
            from read_csv(
                $path, header = true, columns = $columns, auto_detect = false,
                delim = ',', quote = '"', escape = '"', nullstr = '', compression = 'gzip',
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
            line::BIGINT as _line,
            line::BIGINT - 1 as _row,
            list(distinct case when error_type = 'CAST' then column_name end) filter (where error_type = 'CAST') as cast_columns,
            list(distinct error_type::VARCHAR) as error_types,
            first(error_message order by column_idx) as error_message,
            first(csv_line) as csv_line
        from {rejects}_errors
        group by line
        """
    )
    # Accepted row k (in file order) sits on line k + 1 + (rejected lines before it).
    con.execute(
        f"""
        create or replace table {raw} as
        with rejected as (
            select _line, row_number() over (order by _line) as i from {rejects}
        ),
        thresholds as (
            -- accepted rows before the i-th rejected line
            select _line - 1 - i as accepted_before, max(i) as i from rejected group by all
        )
        select p.* exclude (_ordinal),
               p._ordinal + coalesce(t.i, 0) as _row,
               p._ordinal + 1 + coalesce(t.i, 0) as _line
        from {raw}_parsed p
        asof left join thresholds t on p._ordinal > t.accepted_before
        """
    )
    con.execute(f"drop table {raw}_parsed")
    con.execute(f"drop table {rejects}_errors")
    con.execute(f"drop table {rejects}_scan")


def _stage_parquet(con: duckdb.DuckDBPyConnection, f: ExtractFile, raw: str, rejects: str) -> None:
    # Parquet is typed: a column of the wrong type fails the delivery rather than single rows.
    casts = ", ".join(f"cast({c.name} as {c.kind.duckdb}) as {c.name}" for c in f.extract.columns)
    try:
        con.execute(
            f"""
            create or replace table {raw} as
            select {casts}, row_number() over () as _row, null::BIGINT as _line
            from read_parquet($path)
            """,
            {"path": str(f.path)},
        )
    except duckdb.Error as exc:
        raise DeliveryError(f"{f.path}: a column does not have its contract type ({exc})") from exc
    con.execute(
        f"""create or replace table {rejects} (
            _line BIGINT, _row BIGINT, cast_columns VARCHAR[], error_types VARCHAR[],
            error_message VARCHAR, csv_line VARCHAR)"""
    )

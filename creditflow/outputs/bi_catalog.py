"""The BI catalog: ``<published>/catalog.duckdb``, one DuckDB view per published table.

A BI tool that speaks DuckDB opens this small file read-only and sees every published table
as a view over its Parquet partitions, plus ``tables`` (grain and description of each table),
``table_columns`` (the data dictionary) and ``catalog_info``; view and column comments come
from ``creditflow.outputs.dictionary``. It is a separate file from the warehouse, so the warehouse's
single-writer lock never blocks it: a BI session can stay open while a nightly run writes.

Paths. DuckDB resolves a relative path in a view when the view is queried, against the
``file_search_path`` setting, else the working directory; it does not resolve it against the
database file's own folder (checked with duckdb 2.0.1; a view cannot find its own file
either: table functions take no subqueries, so ``duckdb_databases().path`` is out of reach).
Two choices were possible:

- absolute paths: work from anywhere with no setting, but break when the folder is moved or
  mounted elsewhere (the BI host often mounts it at another path, read-only, so it cannot
  be rebuilt there), and a *copy* would silently read the original's files;
- relative paths (chosen): the catalog holds no host path, so a moved, copied or mounted
  folder works unchanged and always reads its own files; the reader names the folder once
  per connection, with ``SET file_search_path = '<published>'``, the ``file_search_path``
  connection option, or by starting in the folder (``cd <published> && duckdb -readonly
  catalog.duckdb``). Forgetting it gives a clear "No files found that match the pattern"
  error, never wrong data.

Views re-list the files on every query, so new partitions (and columns added to new
partitions, thanks to ``union_by_name``) show without a rebuild. ``write_catalog`` needs to
run again only when a table publishes its first partition (until then its view is empty,
typed from the dictionary, so dashboards bind) or the dictionary changes: calling it at the
end of every nightly run (and backfill) keeps it current at no real cost.

The file is built next to the target and renamed over it (atomic on POSIX): a reader opening
it sees the old catalog or the new one, and a reader holding the old one open keeps it. It is
written in DuckDB's v1.0 storage format: duckdb 2.0 writes ``latest`` by default, which the
DuckDB 1.x drivers bundled in BI tools refuse to open.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from creditflow.outputs.dictionary import TABLE_BY_NAME, TABLES, Table
from creditflow.publish import STAGING_DIR, fsync_path

CATALOG_FILE = "catalog.duckdb"
# readable by every DuckDB since 1.0 (and 0.10), so BI drivers that lag behind can open it
STORAGE_VERSION = "v1.0.0"
ALIAS = "bi"
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

HOW_TO_OPEN = (
    "Views read paths relative to the published folder: SET file_search_path = '<published>' "
    "(or open the catalog from inside that folder), then query the views read-only."
)


def table_glob(table: str) -> str:
    """The Parquet files of a table, relative to the published folder (dt folders only)."""
    return f"{table}/dt=*/*.parquet"


def view_sql(table: str) -> str:
    return (
        f"select * from read_parquet('{table_glob(table)}', hive_partitioning = true, "
        "hive_types = {'dt': DATE}, union_by_name = true)"
    )


def catalog_tables(published: Path) -> list[str]:
    """The dictionary's tables, then any other folder holding partitions (not yet documented)."""
    names = [t.name for t in TABLES]
    for p in sorted(published.iterdir()) if published.is_dir() else []:
        if (
            p.is_dir()
            and p.name not in TABLE_BY_NAME
            and p.name != STAGING_DIR
            and _TABLE_NAME.match(p.name)  # a safe identifier and a safe path literal
            and _has_partitions(published, p.name)
        ):
            names.append(p.name)
    return names


def _has_partitions(published: Path, table: str) -> bool:
    return any(published.glob(table_glob(table)))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _empty_view_sql(table: Table) -> str:
    """No partitions yet: an empty view with the documented columns, so queries still bind."""
    cols = ", ".join(f"NULL::{c.type} as {_ident(c.name)}" for c in table.columns)
    return f"select {cols} limit 0"


def _build(con: duckdb.DuckDBPyConnection, published: Path) -> None:
    tables_rows: list[tuple[object, ...]] = []
    column_rows: list[tuple[object, ...]] = []
    for name in catalog_tables(published):
        doc = TABLE_BY_NAME.get(name)
        has_data = _has_partitions(published, name)
        if has_data:
            con.execute(f"create view {_ident(name)} as {view_sql(name)}")
        else:
            assert doc is not None  # undocumented tables are listed only when they have files
            con.execute(f"create view {_ident(name)} as {_empty_view_sql(doc)}")
        if doc is None:
            tables_rows.append((name, None, "(not in the data dictionary yet)", None, None))
            continue
        note = "" if has_data else " No partitions published yet: the view is empty."
        con.execute(
            f"comment on view {_ident(name)} is {_literal(f'{doc.description} Grain: {doc.grain}.{note}')}"
        )
        present = {
            r[0]
            for r in con.sql(
                "select column_name from duckdb_columns() where database_name = $db and table_name = $t",
                params={"db": ALIAS, "t": name},
            ).fetchall()
        }
        for c in doc.columns:
            if c.name in present:  # a column documented but missing is the dictionary test's job
                unit = f" [{c.unit}]" if c.unit else ""
                con.execute(
                    f"comment on column {_ident(name)}.{_ident(c.name)} is {_literal(c.meaning + unit)}"
                )
        tables_rows.append((name, doc.grain, doc.description, doc.partitions, doc.source))
        column_rows += [
            (name, i, c.name, c.type, c.unit or None, c.meaning, c.contract)
            for i, c in enumerate(doc.columns, start=1)
        ]

    con.execute(
        """create table tables (table_name VARCHAR not null, grain VARCHAR, description VARCHAR,
               partitions VARCHAR, defined_in VARCHAR)"""
    )
    con.executemany("insert into tables values (?, ?, ?, ?, ?)", tables_rows)
    con.execute("comment on table tables is 'The published tables: grain and description.'")
    con.execute(
        """create table table_columns (table_name VARCHAR not null, position INTEGER not null,
               column_name VARCHAR not null, type VARCHAR not null, unit VARCHAR,
               meaning VARCHAR, in_contract BOOLEAN not null)"""
    )
    con.executemany("insert into table_columns values (?, ?, ?, ?, ?, ?, ?)", column_rows)
    con.execute(
        "comment on table table_columns is 'The data dictionary: every column of every published table.'"
    )
    con.execute(
        """create table catalog_info (built_at TIMESTAMPTZ not null, built_from VARCHAR not null,
               duckdb_version VARCHAR not null, how_to_open VARCHAR not null)"""
    )
    con.execute(
        "insert into catalog_info values ($at, $src, $v, $how)",
        {
            "at": datetime.now(UTC),
            # informative only: the views do not use it (they are relative)
            "src": str(published),
            "v": duckdb.__version__,
            "how": HOW_TO_OPEN,
        },
    )


def write_catalog(published: Path) -> Path:
    """Create (or replace, atomically) ``<published>/catalog.duckdb``; returns its path."""
    published = published.resolve()
    published.mkdir(parents=True, exist_ok=True)
    final = published / CATALOG_FILE
    # same folder as the target (so the rename is atomic), outside every table folder, hidden
    tmp = published / f".{CATALOG_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        # file_search_path: creating a view binds it, and the views' paths are relative
        con = duckdb.connect(config={"file_search_path": str(published)})
        try:
            con.execute(
                f"attach {_literal(str(tmp))} as {ALIAS} (storage_version {_literal(STORAGE_VERSION)})"
            )
            con.execute(f"use {ALIAS}")
            _build(con, published)
            con.execute("use memory")
            con.execute(f"detach {ALIAS}")  # checkpoints: everything is in the file, no WAL
        finally:
            con.close()
        fsync_path(tmp)
        tmp.replace(final)
        fsync_path(published)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return final


def refresh_catalog(published: Path) -> Path | None:
    """Rebuild the catalog only when it would change: missing, older than the dictionary, or a
    table has its first partition (views pick up later partitions and new columns by
    themselves). A rebuild costs a third of a second; a 240-night backfill saves over a minute."""
    path = published / CATALOG_FILE
    from creditflow.outputs import dictionary

    stale = (
        not path.exists()
        or path.stat().st_mtime < Path(dictionary.__file__).stat().st_mtime
        or any(
            len(list((published / t).glob("dt=*"))) == 1
            for t in catalog_tables(published)
            if (published / t).is_dir()
        )
    )
    return write_catalog(published) if stale else None

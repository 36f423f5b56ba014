"""Check a published area the way BI tools will read it: `creditflow verify`.

Every table is read with DuckDB (``read_parquet`` with hive partitioning), Polars
(``scan_parquet``) and pyarrow datasets (dt typed as a date); each must give the data
dictionary's columns and types and the same rows, and each table folder may hold nothing but
``dt=YYYY-MM-DD/part-0.parquet``. The reader tests run these checks on a small backfill; this
module lets anyone run them on a real published area (the demo's, production's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from creditflow.outputs.bi_catalog import CATALOG_FILE, table_glob
from creditflow.outputs.dictionary import TABLE_BY_NAME, TABLES
from creditflow.publish import PART_FILE, STAGING_DIR

# what may sit at the top of the published folder besides the table folders
OTHER_ENTRIES = {STAGING_DIR, "data_docs", "_reports", CATALOG_FILE}

RUNS_INPUT_FILES = 'STRUCT(file VARCHAR, sha256 VARCHAR, "rows" BIGINT)[]'
# the dictionary's (DuckDB) type names as the other readers spell them
ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "DECIMAL(18,2)": pa.decimal128(18, 2),
    "DECIMAL(8,6)": pa.decimal128(8, 6),  # annual rates
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR[]": pa.list_(pa.string()),
    # instants are stored adjusted to UTC; DuckDB shows them in the session time zone
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    RUNS_INPUT_FILES: pa.list_(
        pa.struct([("file", pa.string()), ("sha256", pa.string()), ("rows", pa.int64())])
    ),
}
POLARS: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "DATE": pl.Date(),
    "DECIMAL(18,2)": pl.Decimal(18, 2),
    "DECIMAL(8,6)": pl.Decimal(8, 6),
    "DOUBLE": pl.Float64(),
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
    "BOOLEAN": pl.Boolean(),
    "VARCHAR[]": pl.List(pl.String),
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
    RUNS_INPUT_FILES: pl.List(
        pl.Struct({"file": pl.String, "sha256": pl.String, "rows": pl.Int64})
    ),
}


def duckdb_read(published: Path, table: str) -> str:
    path = str(published / table_glob(table)).replace("'", "''")
    return (
        f"read_parquet('{path}', hive_partitioning = true, hive_types = {{'dt': DATE}}, "
        "union_by_name = true)"
    )


def arrow_dataset(published: Path, table: str) -> ds.Dataset:
    return ds.dataset(
        published / table,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("dt", pa.date32())]), flavor="hive"),
    )


@dataclass
class TableCheck:
    table: str
    partitions: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)


def check_table(published: Path, table: str) -> TableCheck:
    out = TableCheck(table)
    folder = published / table
    if not folder.is_dir():
        return out  # not published yet (model_runs before the first training night)
    for entry in folder.rglob("*"):
        rel = entry.relative_to(folder)
        ok = (entry.is_dir() and len(rel.parts) == 1 and rel.parts[0].startswith("dt=")) or (
            entry.is_file() and len(rel.parts) == 2 and rel.name == PART_FILE
        )
        if not ok:
            out.problems.append(f"stray entry {entry}")
    out.partitions = len(list(folder.glob(f"dt=*/{PART_FILE}")))
    for reader, check in (("DuckDB", _duckdb), ("Polars", _polars), ("pyarrow", _pyarrow)):
        try:
            check(published, table, out)
        except Exception as exc:  # a reader that cannot read the folder is the finding
            out.problems.append(f"{reader} cannot read it: {exc}")
    return out


def _duckdb(published: Path, table: str, out: TableCheck) -> None:
    doc = TABLE_BY_NAME[table]
    with duckdb.connect() as con:
        rel = con.sql(f"select * from {duckdb_read(published, table)}")
        got = [str(t) for t in rel.types]
        if got != [c.type for c in doc.columns] or rel.columns != [c.name for c in doc.columns]:
            out.problems.append(f"DuckDB reads {list(zip(rel.columns, got, strict=True))}")
        out.rows = con.sql(f"select count(*) from {duckdb_read(published, table)}").fetchall()[0][0]


def _polars(published: Path, table: str, out: TableCheck) -> None:
    doc = TABLE_BY_NAME[table]
    lf = pl.scan_parquet(published / table, hive_partitioning=True)
    if list(lf.collect_schema().items()) != [(c.name, POLARS[c.type]) for c in doc.columns]:
        out.problems.append(f"Polars reads {dict(lf.collect_schema())}")
    if (n := lf.select(pl.len()).collect().item()) != out.rows:
        out.problems.append(f"Polars counts {n} rows, DuckDB {out.rows}")


def _pyarrow(published: Path, table: str, out: TableCheck) -> None:
    doc = TABLE_BY_NAME[table]
    dataset = arrow_dataset(published, table)
    if [(f.name, f.type) for f in dataset.schema] != [(c.name, ARROW[c.type]) for c in doc.columns]:
        out.problems.append(f"pyarrow reads {dataset.schema}")
    if (n := dataset.count_rows()) != out.rows:
        out.problems.append(f"pyarrow counts {n} rows, DuckDB {out.rows}")


def verify(published: Path) -> tuple[list[TableCheck], list[str]]:
    """Every table's check, and problems at the top of the published folder."""
    checks = [check_table(published, t.name) for t in TABLES]
    names = {t.name for t in TABLES}
    top = [
        f"unexpected entry {p}"
        for p in published.iterdir()
        if p.name not in names and p.name not in OTHER_ENTRIES
    ]
    return checks, top

"""Publication: one zstd Parquet file per partition, swapped in whole, read back by every reader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from creditflow.publish import STAGING_DIR, partition_dir, publish_partition

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def rows(con: duckdb.DuckDBPyConnection, n: int, tag: str) -> duckdb.DuckDBPyRelation:
    return con.sql(
        f"""select 'L' || i as loan_id, (i * 1.25)::DECIMAL(18,2) as balance, date '2026-01-01' as origination_month,
                   ['R' || i, 'X'] as reason_codes, '{tag}' as run_id
            from range({n}) t(i)"""
    )


def test_round_trip_through_every_reader(tmp_path: Path) -> None:
    """DuckDB, Polars, pyarrow and pandas read the partition with its types; dt comes from the path."""
    con = duckdb.connect()
    part = publish_partition(rows(con, 5, "run-1"), tmp_path, "t", D1)
    assert part.path == partition_dir(tmp_path, "t", D1) / "part-0.parquet" and part.rows == 5
    assert pq.read_metadata(part.path).row_group(0).column(1).compression == "ZSTD"
    got = duckdb.sql(
        f"select * from read_parquet('{tmp_path}/t/*/*.parquet', hive_partitioning = true, hive_types = {{'dt': 'DATE'}})"
    )
    assert dict(zip(got.columns, got.types, strict=True))["balance"] == "DECIMAL(18,2)"
    assert got.fetchall()[0][-1] == D1
    lf = pl.scan_parquet(f"{tmp_path}/t/**/*.parquet", hive_partitioning=True).collect()
    assert lf.schema["balance"] == pl.Decimal(18, 2) and lf.schema["reason_codes"] == pl.List(
        pl.String
    )
    table = ds.dataset(
        tmp_path / "t",
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("dt", pa.date32())]), flavor="hive"),
    ).to_table()
    assert table.schema.field("dt").type == pa.date32() and table.num_rows == 5
    frame = pd.read_parquet(part.path)
    assert list(frame["reason_codes"][0]) == ["R0", "X"]


def test_rerun_replaces_its_partition_only_and_leaves_no_stray_files(tmp_path: Path) -> None:
    """Publishing D1 again replaces D1's file; D2 is untouched; nothing temporary remains in the table."""
    con = duckdb.connect()
    publish_partition(rows(con, 5, "first"), tmp_path, "t", D1)
    publish_partition(rows(con, 3, "other"), tmp_path, "t", D2)
    before = (partition_dir(tmp_path, "t", D2) / "part-0.parquet").read_bytes()
    publish_partition(rows(con, 7, "second"), tmp_path, "t", D1)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [f"dt={D1}", f"dt={D2}"]
    assert (partition_dir(tmp_path, "t", D2) / "part-0.parquet").read_bytes() == before
    assert duckdb.sql(
        f"select count(*), min(run_id) from '{partition_dir(tmp_path, 't', D1)}/*.parquet'"
    ).fetchall() == [(7, "second")]
    assert sorted(p.name for p in (tmp_path / "t").rglob("*") if p.is_file()) == [
        "part-0.parquet",
        "part-0.parquet",
    ]
    assert list((tmp_path / STAGING_DIR).iterdir()) == []


def test_the_partition_column_belongs_in_the_path(tmp_path: Path) -> None:
    """A relation carrying dt is refused: readers would see it twice."""
    con = duckdb.connect()
    with pytest.raises(ValueError, match="dt belongs in the path"):
        publish_partition(con.sql("select 1 as x, date '2026-01-01' as dt"), tmp_path, "t", D1)

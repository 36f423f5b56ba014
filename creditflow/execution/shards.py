"""Hash shards: which shard a customer or loan belongs to, and how a shard's rows travel.

A key's shard is the first 8 bytes of the MD5 of its UTF-8 text, read as an unsigned
big-endian integer, modulo the number of shards. MD5 here is a spreading function, not a
security one: it is the same in every process, machine and DuckDB version (Python's
``hash()`` is salted per process, DuckDB's ``hash()`` may change between versions), and it
is computed the same way in SQL (``shard_sql``) and in Python (``shard_of``); a test holds
the two to each other.

The driver, which holds the warehouse, writes each table's rows for a stage once, split by
shard, as ``<root>/<table>/shard=<k>/*.parquet`` (``export_slices``); the Dask task of shard
``k`` loads them into its own in-memory DuckDB with the warehouse's schema
(``load_slices``), so the same SQL runs there unchanged.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from creditflow.transforms.inputs import Slice
from creditflow.warehouse import use_business_time_zone


def shard_of(key: str, shards: int) -> int:
    """The shard of ``key`` among ``shards``."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:8], "big") % shards


def shard_sql(expr: str, shards: int) -> str:
    """``shard_of`` as a DuckDB expression over the VARCHAR expression ``expr``."""
    return f"((('0x' || left(md5({expr}), 16))::UBIGINT % {int(shards)})::INTEGER)"


def export_slices(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    slices: tuple[Slice, ...],
    params: dict[str, Any],
    shards: int,
) -> dict[str, int]:
    """Write each slice's rows split by shard under ``root``; rows written per table."""
    if root.exists():
        shutil.rmtree(root)  # a rerun's inputs replace the last attempt's, never mix with them
    root.mkdir(parents=True)
    rows: dict[str, int] = {}
    for s in slices:
        # DuckDB refuses parameters a statement does not name
        used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", s.query)}
        con.execute(f"create or replace temp table _slice as {s.query}", used)
        try:
            quoted = str(root / s.table).replace("'", "''")
            con.execute(
                f"copy (select * exclude (shard_key), {shard_sql('shard_key', shards)} as shard "
                f"from _slice) to '{quoted}' "
                "(format parquet, partition_by (shard), compression zstd)"
            )
            rows[s.table] = int(con.execute("select count(*) from _slice").fetchall()[0][0])
        finally:
            con.execute("drop table if exists _slice")
    return rows


def shard_files(root: Path, table: str, shard: int) -> list[str]:
    """The Parquet files of one table's shard (none when the shard has no rows)."""
    return sorted(str(p) for p in (root / table / f"shard={shard}").glob("*.parquet"))


def load_slices(
    con: duckdb.DuckDBPyConnection, root: Path, tables: tuple[str, ...], shard: int
) -> None:
    """Fill the (already created) tables of ``con`` with the shard's exported rows."""
    for table in tables:
        files = shard_files(root, table, shard)
        if files:
            # the shard folder is Hive-style; its key is not a column of the table
            con.execute(
                f"insert into {table} by name "
                "select * from read_parquet($files, hive_partitioning = false)",
                {"files": files},
            )


def worker_connection(threads: int = 1) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB set up as the warehouse connection is (the business time zone),
    with the worker's share of threads."""
    con = duckdb.connect()
    use_business_time_zone(con)
    con.execute(f"set threads = {int(threads)}")
    return con


def shards_of(keys: np.ndarray, shards: int) -> np.ndarray:
    """``shard_of`` of every key, computed by DuckDB (``shard_sql``) over the whole array."""
    con = duckdb.connect()
    try:
        con.register("_keys", pa.table({"k": pa.array(keys.astype(str), pa.string())}))
        rows = con.execute(f"select {shard_sql('k', shards)} from _keys").fetchnumpy()
    finally:
        con.close()
    return np.asarray(next(iter(rows.values())), dtype=np.int64)

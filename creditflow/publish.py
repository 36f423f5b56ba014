"""Where published tables live and how a partition is swapped in.

``<published>/<table>/dt=YYYY-MM-DD/part-0.parquet``, zstd. A partition is written to
``<published>/.staging/`` (outside every table folder, so no reader globbing a table
ever sees it), flushed to disk, then renamed over the live file: POSIX rename is atomic,
so a reader sees the old complete partition or the new complete one. The partition column
``dt`` lives in the path only, as Hive partitioning expects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

STAGING_DIR = ".staging"
PART_FILE = "part-0.parquet"


@dataclass(frozen=True)
class PublishedPartition:
    table: str
    business_date: date
    path: Path
    rows: int


def partition_dir(published: Path, table: str, business_date: date) -> Path:
    return published / table / f"dt={business_date.isoformat()}"


# While a night runs, partitions are staged and swapped in together at its end, so a night
# that fails halfway publishes nothing new (each swap stays atomic per partition).
_batch: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("publication_batch", default=None)


@contextmanager
def publication_batch() -> Iterator[list[tuple[Path, Path]]]:
    """Stage every partition published inside; swap them all in on success, drop them on error."""
    staged: list[tuple[Path, Path]] = []
    token = _batch.set(staged)
    try:
        yield staged
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _batch.reset(token)
    for tmp, final in staged:
        _swap(tmp, final)


def _swap(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(final)
    fsync_path(final.parent)


def publish_partition(
    relation: duckdb.DuckDBPyRelation, published: Path, table: str, business_date: date
) -> PublishedPartition:
    """Write ``relation`` (without a ``dt`` column) as the table's partition for ``business_date``."""
    if "dt" in relation.columns:
        raise ValueError(f"{table}: the partition column dt belongs in the path, not in the file")
    staging = published / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f"{table}-{business_date.isoformat()}-{uuid.uuid4().hex}.parquet"
    final = partition_dir(published, table, business_date) / PART_FILE
    batch = _batch.get()
    try:
        _write_parquet(relation, tmp)
        fsync_path(tmp)
        rows = pq.read_metadata(tmp).num_rows
        if batch is not None:
            batch.append((tmp, final))  # swapped in when the night ends well
        else:
            _swap(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PublishedPartition(table=table, business_date=business_date, path=final, rows=rows)


def _write_parquet(relation: duckdb.DuckDBPyRelation, path: Path) -> None:
    """zstd Parquet with every column nullable. Left to itself, DuckDB marks a column NOT NULL
    where it can prove it for the rows at hand, which for a partition depends on the data and
    on the table's history (an empty night's notices came out with other flags on a rerun):
    one schema per table, whatever the night, keeps reruns byte-identical."""
    table = relation.to_arrow_table()
    nullable = table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))
    with duckdb.connect() as con:
        con.from_arrow(nullable).to_parquet(str(path), compression="zstd")


def clear_staging(published: Path) -> int:
    """Remove what a killed run left in the staging folder; call only under the run lock."""
    staging = published / STAGING_DIR
    removed = 0
    if staging.is_dir():
        for leftover in staging.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk before relying on it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Serialise one day's extracts as the contract's files, byte for byte reproducibly.

Frames arrive in the simulator's internal form (fen, millionths, epoch seconds) and leave
as contract types: text in CSV (gzip with no timestamp or name in its header, so the same
rows give the same sha256), or typed Parquet columns (DECIMAL, DATE, TIMESTAMPTZ).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from creditflow.contract import BUSINESS_TZ, BUSINESS_UTC_OFFSET_S, MANIFEST_NAME, Extract, Kind

_OFFSET_S = BUSINESS_UTC_OFFSET_S


def _fixed_point(col: pl.Expr, scale: int) -> pl.Expr:
    """Integer units of 10**-scale as a decimal string, sign kept (defects can be negative)."""
    unit = 10**scale
    mag = col.abs()
    text = (mag // unit).cast(pl.String) + "." + (mag % unit).cast(pl.String).str.zfill(scale)
    return pl.when(col < 0).then("-" + text).otherwise(text)


def _text_expr(name: str, kind: Kind) -> pl.Expr:
    col = pl.col(name)
    if kind is Kind.MONEY:
        return _fixed_point(col, 2)
    if kind is Kind.RATE:
        return _fixed_point(col, 6)
    if kind is Kind.TIMESTAMPTZ:
        local = pl.from_epoch(col + _OFFSET_S, time_unit="s")
        return local.dt.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"
    if kind is Kind.DATE:
        return col.dt.strftime("%Y-%m-%d")
    if kind is Kind.BOOLEAN:
        return pl.when(col).then(pl.lit("true")).otherwise(pl.lit("false"))
    return col.cast(pl.String)


def as_text(df: pl.DataFrame, extract: Extract) -> pl.DataFrame:
    """Every column as the text a CSV extract carries; nulls stay null (an empty field)."""
    return df.select(
        [
            pl.when(pl.col(c.name).is_null())
            .then(None)
            .otherwise(_text_expr(c.name, c.kind))
            .alias(c.name)
            for c in extract.columns
        ]
    )


def csv_bytes(text_df: pl.DataFrame) -> bytes:
    return text_df.write_csv(null_value="", line_terminator="\n").encode("utf-8")


def gzip_bytes(raw: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and an empty name keep the gzip header identical from run to run
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(raw)
    return buf.getvalue()


def as_arrow(df: pl.DataFrame, extract: Extract) -> pa.Table:
    arrays = []
    for c in extract.columns:
        s = df[c.name]
        if c.kind in (Kind.MONEY, Kind.RATE):
            # via exact decimal text: integer fen cast straight to DECIMAL would rescale
            text = df.select(_text_expr(c.name, c.kind)).to_series()
            arrays.append(pa.array(text.to_arrow()).cast(c.kind.arrow))
        elif c.kind is Kind.TIMESTAMPTZ:
            micros = (s.cast(pl.Int64) * 1_000_000).to_arrow()
            arrays.append(micros.cast(pa.int64()).cast(c.kind.arrow))
        else:
            arrays.append(pa.array(s.to_arrow()).cast(c.kind.arrow))
    return pa.Table.from_arrays(arrays, schema=extract.arrow_schema())


def parquet_bytes(table: pa.Table) -> bytes:
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue().to_pybytes()


def generated_at(business_date: date) -> str:
    """When the upstream hands the day over: 01:00 Shanghai the next morning (deterministic)."""
    moment = datetime.combine(
        business_date + timedelta(days=1), time(1, 0), tzinfo=ZoneInfo(BUSINESS_TZ)
    )
    return moment.isoformat()


def write_delivery(folder: Path, business_date: date, files: dict[str, tuple[bytes, int]]) -> dict:
    """Write the extracts, then ``_manifest.json`` last, as the upstream contract requires.

    An existing manifest is removed first, so a folder being rewritten never looks complete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).unlink(missing_ok=True)
    expected = set(files)
    for stale in folder.iterdir():
        if stale.name not in expected:
            stale.unlink()
    manifest_files = {}
    for name, (payload, rows) in files.items():
        (folder / name).write_bytes(payload)
        manifest_files[name] = {"rows": rows, "sha256": hashlib.sha256(payload).hexdigest()}
    manifest = {
        "business_date": business_date.isoformat(),
        "generated_at": generated_at(business_date),
        "files": manifest_files,
    }
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST_NAME)
    return manifest

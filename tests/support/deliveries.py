"""Helpers to copy deliveries and write corrupted ones, as an upstream with a bug would."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl

from creditflow.contract import MANIFEST_NAME
from creditflow.upstream.writer import csv_bytes, gzip_bytes


def copy_days(src_landing: Path, dst_landing: Path, days: list[str]) -> Path:
    for day in days:
        shutil.copytree(src_landing / f"dt={day}", dst_landing / f"dt={day}")
    return dst_landing


def read_text(folder: Path, extract: str) -> pl.DataFrame:
    """An extract as delivered, every column a string (empty field = null)."""
    raw = gzip.decompress((folder / f"{extract}.csv.gz").read_bytes())
    return pl.read_csv(io.BytesIO(raw), infer_schema=False)


def write_text(folder: Path, extract: str, df: pl.DataFrame, *, manifest: bool = True) -> None:
    """Write an extract back (gzip CSV) and, by default, a manifest that matches it."""
    (folder / f"{extract}.csv.gz").write_bytes(gzip_bytes(csv_bytes(df)))
    if manifest:
        refresh_manifest(folder)


def write_raw(folder: Path, name: str, text: str, *, manifest: bool = True) -> None:
    (folder / name).write_bytes(gzip_bytes(text.encode()))
    if manifest:
        refresh_manifest(folder)


def refresh_manifest(folder: Path) -> None:
    """Recompute rows and sha256 of every listed file, as a correct upstream would."""
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    for name, meta in manifest["files"].items():
        payload = (folder / name).read_bytes()
        meta["sha256"] = hashlib.sha256(payload).hexdigest()
        if name.endswith(".csv.gz") and payload[:2] == b"\x1f\x8b":
            meta["rows"] = gzip.decompress(payload).decode().count("\n") - 1
    path.write_text(json.dumps(manifest, indent=2))


def edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest, indent=2))


def warehouse_snapshot(path: Path, exclude: tuple[str, ...] = ("load_attempts",)) -> dict[str, str]:
    """A digest of every table's ordered contents: equal digests mean an identical warehouse."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'main'"
            ).fetchall()
        ]
        out = {}
        for t in sorted(tables):
            if t in exclude:
                continue
            rows = con.execute(f"select * from {t} order by all").fetchall()
            out[t] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()

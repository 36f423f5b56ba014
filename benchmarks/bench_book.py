"""The benchmark's book: a base book run night by night through the real pipeline, then
replicated with disjoint ids up to the benchmark's scale.

Why replicate instead of generating a million customers and running 200 nights for them:
the nightly run needs state (the ledger's history, the limit history, a champion trained on
matured labels), and building that night by night at full scale would take hours on the
machine being measured. A base book of ``base_customers`` goes through every night for real
(``creditflow backfill``); its warehouse is then copied ``k`` times with every customer, loan
and transaction id suffixed (``C000123`` -> ``C000123-x007``), date by date, so each table
keeps the date-clustered order nightly appends give it (DuckDB's zone maps prune on it). The
measured night's delivery is the base book's next delivery replicated the same way: a full,
real delivery of the target scale. What the replicated book lacks is diversity (k customers
share one behaviour path); no stage's cost depends on that.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from creditflow.contract import MANIFEST_NAME
from creditflow.upstream.writer import csv_bytes, gzip_bytes

# every id a row is known by; replicas suffix them all, so references stay inside a replica
ID_COLUMNS = ("customer_id", "loan_id", "txn_id", "reverses_txn_id")


@dataclass(frozen=True)
class BaseBook:
    customers: int = 10_000
    nights: int = 215  # history: enough matured labels for a champion and a retrain
    start: date = date(2025, 9, 1)
    seed: int = 42

    @property
    def bench_date(self) -> date:
        """The measured night: the day after the last night of history."""
        return self.start + timedelta(days=self.nights)

    @property
    def key(self) -> str:
        return f"base-{self.customers}-{self.nights}-{self.start:%Y%m%d}-{self.seed}"


def bench_env(work: Path) -> dict[str, str]:
    """The environment every benchmark process runs in: no telemetry, no data docs, its own
    Prefect home, OpenMP threads that yield when idle (spin-waits distort timings on a busy machine)."""
    # the book's paths are passed explicitly; a user's CREDITFLOW_* paths must not redirect
    # them (the Dask settings, CREDITFLOW_DASK_SCHEDULER and CREDITFLOW_SHARDS, pass through)
    paths = ("HOME", "LANDING", "WAREHOUSE", "PUBLISHED", "MODELS", "SHARD_ROOT", "EXECUTION")
    inherited = {k: v for k, v in os.environ.items() if k.removeprefix("CREDITFLOW_") not in paths}
    return inherited | {
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "False",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(work / "prefect-home"),
        "CREDITFLOW_DATA_DOCS": "false",
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def _creditflow() -> list[str]:
    return [sys.executable, "-m", "creditflow.cli"]


def build_base(book: BaseBook, work: Path, log: Path) -> Path:
    """Generate the base book and run its history nights (once; reused while it is there)."""
    home = work / book.key
    done = home / "BUILT"
    if done.exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    env = bench_env(work) | {"CREDITFLOW_HOME": str(home)}
    last = book.bench_date - timedelta(days=1)
    steps = [
        [*_creditflow(), "generate", "--customers", str(book.customers),
         "--days", str(book.nights + 1), "--start", book.start.isoformat(), "--seed", str(book.seed)],
        [*_creditflow(), "backfill", "--start", book.start.isoformat(), "--end", last.isoformat()],
    ]  # fmt: skip
    with log.open("a") as out:
        for cmd in steps:
            out.write(f"$ {' '.join(cmd[2:])}\n")
            out.flush()
            subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    done.write_text(book.key + "\n")
    return home


def _replica(column: str) -> str:
    # copy 0 keeps the base ids, so scale 1 is the base book itself
    return (
        f"case when k = 0 then {column} else {column} || '-x' || lpad(k::VARCHAR, 3, '0') end "
        f"as {column}"
    )


def tile_warehouse(base: Path, out: Path, copies: int) -> dict[str, int]:
    """``out`` = ``base`` with every id-carrying table replicated ``copies`` times, date by
    date in date order (as nightly appends would have laid it out). Returns rows per table."""
    out.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(out))
    try:
        con.execute(f"attach '{base}' as b (read_only)")
        tables = con.execute(
            "select table_name, sql from duckdb_tables() where database_name = 'b' "
            "and schema_name = 'main' order by table_name"
        ).fetchall()
        for _, ddl in tables:
            con.execute(ddl)
        views = [
            r[0]
            for r in con.execute(
                "select sql from duckdb_views() where database_name = 'b' and not internal"
            ).fetchall()
        ]
        while views:  # a view over another view needs that one first
            pending = []
            for ddl in views:
                try:
                    con.execute(ddl)
                except duckdb.CatalogException:
                    pending.append(ddl)
            if len(pending) == len(views):
                raise ValueError(f"views that cannot be recreated: {pending}")
            views = pending
        counts = {}
        for name, _ in tables:
            cols = [
                r[0]
                for r in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'b' "
                    "and table_name = $t order by column_index",
                    {"t": name},
                ).fetchall()
            ]
            ids = [c for c in cols if c in ID_COLUMNS]
            if ids and "dt" not in cols:
                raise ValueError(f"{name}: the benchmark replicates date-partitioned tables only")
            if not ids or copies == 1:
                con.execute(f"insert into main.{name} select * from b.main.{name}")
            else:
                exprs = ", ".join(_replica(c) if c in ids else c for c in cols)
                dates = [
                    r[0]
                    for r in con.execute(f"select distinct dt from b.main.{name} order by dt").fetchall()
                ]  # fmt: skip
                for d in dates:
                    con.execute(
                        f"insert into main.{name} select {exprs} from b.main.{name}, "
                        f"range({copies}) as r(k) where dt = $d",
                        {"d": d},
                    )
            counts[name] = int(con.execute(f"select count(*) from main.{name}").fetchall()[0][0])
        con.execute("checkpoint")
        return counts
    finally:
        con.close()


def tile_delivery(src: Path, dst: Path, copies: int) -> dict[str, int]:
    """The base delivery folder replicated ``copies`` times, with a manifest that matches."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    manifest = json.loads((src / MANIFEST_NAME).read_text())
    rows = {}
    for name, meta in manifest["files"].items():
        if not name.endswith(".csv.gz"):
            raise ValueError(f"{src / name}: the benchmark replicates CSV deliveries only")
        text = pl.read_csv(
            io.BytesIO(gzip.decompress((src / name).read_bytes())), infer_schema=False
        )
        ids = [c for c in text.columns if c in ID_COLUMNS]
        parts = [text] + [
            text.with_columns(pl.col(c) + f"-x{k:03d}" for c in ids) for k in range(1, copies)
        ]
        tiled = pl.concat(parts)
        payload = gzip_bytes(csv_bytes(tiled))
        (dst / name).write_bytes(payload)
        meta["rows"], meta["sha256"] = tiled.height, hashlib.sha256(payload).hexdigest()
        rows[name.split(".")[0]] = tiled.height
    (dst / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return rows


@dataclass(frozen=True)
class ScaledBook:
    """A replicated book, ready to measure: ``before.duckdb`` is the warehouse as the last
    history night left it; each measurement starts from a fresh copy of it."""

    home: Path
    customers: int
    copies: int
    bench_date: date
    rows: dict[str, int]

    @property
    def snapshot(self) -> Path:
        return self.home / "before.duckdb"

    def fresh_home(self, name: str) -> Path:
        """A measurement's home: the snapshot, the models and the delivery, nothing published."""
        run = self.home / "runs" / name
        shutil.rmtree(run, ignore_errors=True)
        (run / "landing").mkdir(parents=True)
        shutil.copy(self.snapshot, run / "warehouse.duckdb")
        shutil.copytree(self.home / "models", run / "models")
        folder = f"dt={self.bench_date}"
        (run / "landing" / folder).symlink_to(self.home / "landing" / folder)
        return run


def scale_book(base_home: Path, book: BaseBook, customers: int, work: Path) -> ScaledBook:
    if customers % book.customers:
        raise ValueError(
            f"--scale {customers:,} is not a multiple of the base book's {book.customers:,} customers"
        )
    copies = customers // book.customers
    home = work / f"{book.key}-x{copies}"
    meta = home / "BUILT.json"
    if meta.exists():
        rows = json.loads(meta.read_text())
    else:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        rows = tile_warehouse(base_home / "warehouse.duckdb", home / "before.duckdb", copies)
        folder = f"dt={book.bench_date}"
        delivered = tile_delivery(base_home / "landing" / folder, home / "landing" / folder, copies)
        rows = {"warehouse": rows, "delivery": delivered}
        shutil.copytree(base_home / "models", home / "models")
        meta.write_text(json.dumps(rows, indent=2))
    return ScaledBook(
        home=home, customers=customers, copies=copies, bench_date=book.bench_date, rows=rows
    )

"""``creditflow generate``: write a landing zone of synthetic deliveries, one day at a time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

import numpy as np

from creditflow.contract import EXTRACTS
from creditflow.upstream import defects as dfx
from creditflow.upstream.simulation import DayOutput, GeneratorConfig, Portfolio
from creditflow.upstream.writer import (
    as_arrow,
    as_text,
    csv_bytes,
    gzip_bytes,
    parquet_bytes,
    write_delivery,
)


class Format(StrEnum):
    """The file formats an upstream may deliver (the contract allows both)."""

    csv = "csv"
    parquet = "parquet"


FORMATS = tuple(f.value for f in Format)


@dataclass
class GenerationResult:
    landing: Path
    days: int
    rows: dict[str, int] = field(default_factory=dict)
    defects: int = 0
    defects_file: Path | None = None
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def default_defects_file(landing: Path) -> Path:
    """Beside the landing zone, never inside it: a loader must not see the answers."""
    return landing.parent / f"{landing.name}_defects.jsonl"


def generate(
    cfg: GeneratorConfig,
    landing: Path,
    fmt: str = "csv",
    defect_rate: float = 0.0,
    defects_file: Path | None = None,
    on_day: Callable[[date, dict[str, int]], None] | None = None,
) -> GenerationResult:
    """Simulate ``cfg.days`` business dates and deliver each into ``landing/dt=YYYY-MM-DD/``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    t0 = time.perf_counter()
    portfolio = Portfolio(cfg)
    result = GenerationResult(landing=landing, days=cfg.days, rows={e.name: 0 for e in EXTRACTS})
    sidecar = None
    if defect_rate > 0:
        result.defects_file = defects_file or default_defects_file(landing)
        result.defects_file.parent.mkdir(parents=True, exist_ok=True)
        sidecar = result.defects_file.open("w", encoding="utf-8")
    try:
        for i in range(cfg.days):
            out = portfolio.step(i)
            # defects draw from their own stream so a clean and a damaged run share the book
            rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, i, 0xDEF]))
            rows, records = deliver(out, landing, fmt, defect_rate, rng)
            for name, n in rows.items():
                result.rows[name] += n
            if sidecar is not None:
                for rec in records:
                    sidecar.write(json.dumps(rec, sort_keys=True) + "\n")
            result.defects += len(records)
            if on_day is not None:
                on_day(out.business_date, rows)
    finally:
        if sidecar is not None:
            sidecar.close()
    result.seconds = time.perf_counter() - t0
    return result


def deliver(
    out: DayOutput, landing: Path, fmt: str, defect_rate: float, rng: np.random.Generator
) -> tuple[dict[str, int], list[dict]]:
    """Serialise (and optionally damage) one day's frames, then write files and manifest."""
    files: dict[str, tuple[bytes, int]] = {}
    rows: dict[str, int] = {}
    records: list[dict] = []
    for extract in EXTRACTS:
        df = out.frames[extract.name]
        df, injected = dfx.inject(
            df, extract.name, fmt, defect_rate, out.dependent.get(extract.name), rng
        )
        name = extract.file_name(fmt)
        if fmt == "csv":
            text = dfx.garble_text(as_text(df, extract), injected, rng)
            payload = gzip_bytes(dfx.break_lines(csv_bytes(text), injected))
        else:
            payload = parquet_bytes(as_arrow(df, extract))
        files[name] = (payload, df.height)
        rows[extract.name] = df.height
        for row, kind, column in injected:
            key = {k: _plain(df[k][row]) for k in dfx.KEYS[extract.name]}
            records.append(
                {
                    "business_date": out.business_date.isoformat(),
                    "extract": extract.name,
                    "file": name,
                    "row": row + 1,
                    "line": row + 2 if fmt == "csv" else None,
                    "kind": kind,
                    "column": column,
                    "key": key,
                }
            )
    write_delivery(landing / f"dt={out.business_date.isoformat()}", out.business_date, files)
    return rows, records


def _plain(value: object) -> str | None:
    return None if value is None else str(value)

"""The landing zone: find a business date's delivery and prove it is complete and intact.

Everything here is about the delivery as a whole (manifest, file names, checksums,
headers). A problem at this level fails the date before anything is read into the
warehouse; row-level problems are the validator's business.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from creditflow.contract import EXTRACTS, MANIFEST_NAME, Extract


class DeliveryError(Exception):
    """A delivery that must not be loaded; the message names the file, line or column, and rule."""


@dataclass(frozen=True)
class ExtractFile:
    extract: Extract
    path: Path
    fmt: str  # "csv" or "parquet"
    manifest_rows: int
    sha256: str
    size: int


@dataclass(frozen=True)
class Delivery:
    business_date: date
    folder: Path
    generated_at: str
    files: tuple[ExtractFile, ...]

    def file(self, extract_name: str) -> ExtractFile:
        return next(f for f in self.files if f.extract.name == extract_name)

    @property
    def fingerprint(self) -> dict[str, str]:
        """File name to sha256: what identifies this delivery's content."""
        return {f.path.name: f.sha256 for f in self.files}


def delivery_folder(landing: Path, business_date: date) -> Path:
    return landing / f"dt={business_date.isoformat()}"


def available_dates(landing: Path) -> list[date]:
    """Business dates whose delivery is complete (has a manifest), in order."""
    out = []
    for manifest in landing.glob(f"dt=*/{MANIFEST_NAME}"):
        try:
            out.append(date.fromisoformat(manifest.parent.name.removeprefix("dt=")))
        except ValueError:
            continue
    return sorted(out)


def open_delivery(landing: Path, business_date: date) -> Delivery:
    """Read and check the manifest of ``dt=business_date``; verify every file against it."""
    folder = delivery_folder(landing, business_date)
    if not folder.is_dir():
        raise DeliveryError(f"{folder}: no delivery for {business_date} (folder missing)")
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DeliveryError(
            f"{manifest_path}: missing; the upstream writes it last, so the delivery for "
            f"{business_date} is incomplete and is not loaded"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeliveryError(f"{manifest_path}: not valid JSON ({exc})") from exc
    for key in ("business_date", "generated_at", "files"):
        if key not in manifest:
            raise DeliveryError(f"{manifest_path}: required key {key!r} is missing")
    if manifest["business_date"] != business_date.isoformat():
        raise DeliveryError(
            f"{manifest_path}: business_date is {manifest['business_date']!r}, "
            f"but the folder is for {business_date}"
        )
    listed: dict = manifest["files"]
    known = {e.file_name(fmt): (e, fmt) for e in EXTRACTS for fmt in ("csv", "parquet")}
    for name in listed:
        if name not in known:
            raise DeliveryError(
                f"{manifest_path}: lists {name!r}, which is not a contract extract "
                f"(expected one of {sorted(known)})"
            )
    files = []
    for extract in EXTRACTS:
        candidates = [n for n in listed if known[n][0] is extract]
        if not candidates:
            raise DeliveryError(f"{manifest_path}: no file listed for extract {extract.name!r}")
        if len(candidates) > 1:
            raise DeliveryError(f"{manifest_path}: {extract.name!r} is listed twice ({candidates})")
        name = candidates[0]
        files.append(
            _verify_file(folder / name, extract, known[name][1], listed[name], manifest_path)
        )
    return Delivery(
        business_date=business_date,
        folder=folder,
        generated_at=str(manifest["generated_at"]),
        files=tuple(files),
    )


def _verify_file(
    path: Path, extract: Extract, fmt: str, meta: dict, manifest_path: Path
) -> ExtractFile:
    if not isinstance(meta, dict) or "rows" not in meta or "sha256" not in meta:
        raise DeliveryError(f"{manifest_path}: entry for {path.name} needs 'rows' and 'sha256'")
    if not path.is_file():
        raise DeliveryError(f"{path}: listed in the manifest but not delivered")
    digest = _sha256(path)
    if digest != str(meta["sha256"]).lower():
        raise DeliveryError(
            f"{path}: sha256 is {digest}, the manifest says {meta['sha256']} (file changed or truncated)"
        )
    try:
        rows = int(meta["rows"])
    except (TypeError, ValueError) as exc:
        raise DeliveryError(f"{manifest_path}: rows for {path.name} is not a whole number") from exc
    _check_columns(path, extract, fmt)
    return ExtractFile(extract, path, fmt, rows, digest, path.stat().st_size)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_columns(path: Path, extract: Extract, fmt: str) -> None:
    """The header (CSV) or schema (Parquet) names exactly the contract's columns."""
    if fmt == "csv":
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
                header_line = f.readline()
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise DeliveryError(f"{path}: cannot be read as UTF-8 gzip CSV ({exc})") from exc
        found = [h.strip().strip('"') for h in header_line.rstrip("\r\n").split(",")]
    else:
        try:
            found = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise DeliveryError(f"{path}: cannot be read as Parquet ({exc})") from exc
    expected = extract.column_names
    if found == expected:
        return
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        raise DeliveryError(f"{path}: {'; '.join(parts)} (rule: header must be {expected})")
    raise DeliveryError(
        f"{path}: columns are out of order: {found} (rule: header must be {expected})"
    )


def checked_or_none(landing: Path, d: date) -> Delivery | None:
    """The date's delivery checked ahead of its night (a backfill on a cluster checks every
    date at once), or None when it fails: the night then checks it again itself and fails
    with the full error, in date order, as a local backfill would."""
    try:
        return open_delivery(landing, d)
    except DeliveryError:
        return None

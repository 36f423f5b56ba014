"""--defects damages a share of rows, records each one, and damages nothing else."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from creditflow.contract import EXTRACTS_BY_NAME, MANIFEST_NAME
from creditflow.upstream.generate import GenerationResult


def lines_of(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def records(damaged_book: GenerationResult) -> list[dict]:
    assert damaged_book.defects_file is not None
    return [json.loads(line) for line in damaged_book.defects_file.read_text().splitlines()]


def test_sidecar_lives_outside_the_landing_zone(damaged_book: GenerationResult) -> None:
    """A loader scanning the landing zone never sees the answers."""
    assert damaged_book.defects_file is not None
    assert damaged_book.landing.resolve() not in damaged_book.defects_file.resolve().parents


def test_every_kind_is_injected_into_every_eligible_extract(records: list[dict]) -> None:
    """All seven kinds occur; behaviour, transactions and customer updates are all hit."""
    kinds = Counter(r["kind"] for r in records)
    assert set(kinds) == {
        "duplicate",
        "null_required",
        "unknown_customer",
        "negative_amount",
        "non_numeric_amount",
        "date_outside",
        "malformed_line",
    }
    assert {r["extract"] for r in records} == {"behaviour", "transactions", "customers"}


def test_defect_rate_is_roughly_the_requested_share(
    damaged_book: GenerationResult, records: list[dict]
) -> None:
    """About 2% of the damageable rows are damaged."""
    damageable = damaged_book.rows["behaviour"] + damaged_book.rows["transactions"]
    share = sum(r["extract"] != "customers" for r in records) / damageable
    assert 0.012 < share < 0.025


def _known_customers(landing: Path, upto: str) -> set[str]:
    known = set()
    for folder in sorted(landing.glob("dt=*")):
        if folder.name.removeprefix("dt=") > upto:
            break
        rows = csv.DictReader(io.StringIO("\n".join(lines_of(folder / "customers.csv.gz"))))
        known |= {r["customer_id"] for r in rows if r["customer_id"]}
    return known


def test_each_recorded_row_breaks_the_rule_it_names(
    damaged_book: GenerationResult, records: list[dict]
) -> None:
    """Read at its line in its file, every recorded row really is a defect of its kind."""
    landing = damaged_book.landing
    for r in records:
        folder = landing / f"dt={r['business_date']}"
        lines = lines_of(folder / r["file"])
        header = lines[0].split(",")
        raw = lines[r["line"] - 1]
        fields = next(csv.reader([raw]))
        if r["kind"] == "malformed_line":
            assert len(fields) != len(header), r
            continue
        row = dict(zip(header, fields, strict=True))
        dt = date.fromisoformat(r["business_date"])
        value = row.get(r["column"] or "", "")
        match r["kind"]:
            case "duplicate":
                assert raw == lines[r["line"] - 2], r
            case "null_required":
                assert value == "", r
            case "negative_amount":
                assert Decimal(value) < 0, r
            case "non_numeric_amount":
                with pytest.raises(InvalidOperation):
                    Decimal(value)
            case "unknown_customer":
                assert value not in _known_customers(landing, r["business_date"]), r
            case "date_outside":
                day = date.fromisoformat(value[:10])
                if r["column"] == "txn_ts":
                    assert day > dt or day < dt - timedelta(days=3), r
                elif r["column"] == "business_date":
                    assert day != dt, r
                else:
                    assert day > dt, r
            case _:
                pytest.fail(f"unexpected kind {r}")


def test_nothing_but_the_recorded_rows_differs_from_the_clean_book(
    small_book: GenerationResult, damaged_book: GenerationResult, records: list[dict]
) -> None:
    """Dropping the recorded lines leaves clean rows only: the clean book minus the rows damaged in place."""
    by_file: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        by_file.setdefault((r["business_date"], r["file"]), []).append(r)
    for folder in sorted(damaged_book.landing.glob("dt=*")):
        for name in [e.file_name("csv") for e in EXTRACTS_BY_NAME.values()]:
            hits = by_file.get((folder.name.removeprefix("dt="), name), [])
            damaged = lines_of(folder / name)
            clean = lines_of(small_book.landing / folder.name / name)
            bad_lines = {r["line"] for r in hits}
            remaining = [line for i, line in enumerate(damaged, start=1) if i not in bad_lines]
            in_place = sum(r["kind"] != "duplicate" for r in hits)
            assert not (Counter(remaining) - Counter(clean)), (folder, name)
            assert len(remaining) == len(clean) - in_place, (folder, name)


def test_manifests_describe_the_damaged_files(damaged_book: GenerationResult) -> None:
    """Row-level defects are not delivery failures: counts include every damaged line."""
    for folder in sorted(damaged_book.landing.glob("dt=*")):
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        for name, meta in manifest["files"].items():
            assert meta["rows"] == len(lines_of(folder / name)) - 1

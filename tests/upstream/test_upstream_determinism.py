"""Same arguments, same bytes; Parquet deliveries carry the same rows as CSV ones, typed."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from creditflow.contract import EXTRACTS
from creditflow.upstream.generate import GenerationResult, generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.books import delivery_dirs
from tests.support.oracle import load_landing

TINY = GeneratorConfig(customers=300, days=12, start=date(2026, 5, 1), seed=11)


def fingerprint(landing: Path) -> dict[str, str]:
    return {
        str(p.relative_to(landing)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    """Two runs with the same arguments write files with the same sha256, manifests included."""
    a = generate(TINY, tmp_path / "a", defect_rate=0.05)
    b = generate(TINY, tmp_path / "b", defect_rate=0.05)
    assert fingerprint(a.landing) == fingerprint(b.landing)
    assert a.defects_file is not None and b.defects_file is not None
    assert a.defects_file.read_bytes() == b.defects_file.read_bytes()


def test_a_different_seed_gives_a_different_book(tmp_path: Path) -> None:
    """The seed matters: another seed changes the files."""
    a = generate(TINY, tmp_path / "a")
    b = generate(GeneratorConfig(**{**TINY.__dict__, "seed": 12}), tmp_path / "b")
    assert fingerprint(a.landing) != fingerprint(b.landing)


def test_a_longer_run_starts_with_the_same_days(tmp_path: Path) -> None:
    """Generating more days does not change the days a shorter run already delivered."""
    short = generate(GeneratorConfig(**{**TINY.__dict__, "days": 5}), tmp_path / "short")
    long = generate(TINY, tmp_path / "long")
    short_prints = fingerprint(short.landing)
    long_prints = fingerprint(long.landing)
    assert short_prints == {k: v for k, v in long_prints.items() if k in short_prints}


def test_rerunning_into_the_same_folder_replaces_it(tmp_path: Path) -> None:
    """Writing over an earlier landing zone leaves exactly the new delivery, no stale files."""
    generate(TINY, tmp_path / "l", fmt="parquet")
    again = generate(TINY, tmp_path / "l")
    fresh = generate(TINY, tmp_path / "fresh")
    assert fingerprint(again.landing) == fingerprint(fresh.landing)


@pytest.mark.parametrize("extract", EXTRACTS, ids=lambda e: e.name)
def test_parquet_files_have_the_contract_types(parquet_book: GenerationResult, extract) -> None:
    """DECIMAL money, DATE dates, zoned timestamps: the Parquet schema is the contract's."""
    for folder in delivery_dirs(parquet_book.landing)[:3]:
        schema = pq.read_schema(folder / extract.file_name("parquet"))
        assert schema.remove_metadata() == extract.arrow_schema(), folder


@pytest.mark.parametrize("extract", EXTRACTS, ids=lambda e: e.name)
def test_parquet_and_csv_deliver_the_same_rows(
    small_book: GenerationResult, parquet_book: GenerationResult, extract
) -> None:
    """The format changes the encoding, never the content."""
    con = load_landing(small_book.landing)
    con.execute(
        "create table pq as select * from read_parquet($g, hive_partitioning = true, hive_types = {'dt': 'DATE'})",
        {"g": str(parquet_book.landing / "dt=*" / extract.file_name("parquet"))},
    )
    cols = ", ".join([*extract.column_names, "dt"])
    for a, b in ((extract.name, "pq"), ("pq", extract.name)):
        diff = con.execute(
            f"select count(*) from (select {cols} from {a} except all select {cols} from {b})"
        ).fetchone()
        assert diff is not None and diff[0] == 0
    n = con.execute(f"select count(*) from {extract.name}").fetchone()
    assert n is not None and n[0] > 0

"""The benchmark's replicated book: a faithful, larger copy that the real pipeline accepts."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from benchmarks.bench_book import ID_COLUMNS, tile_delivery, tile_warehouse
from creditflow.landing import open_delivery
from creditflow.settings import Settings
from creditflow.steps.delinquency import run_ledger
from creditflow.steps.ingest import ingest
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig

START = date(2026, 2, 1)
COPIES = 3


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """300 customers, two nights ingested and ledgered; the third day's delivery waiting."""
    home = tmp_path_factory.mktemp("bench-base")
    settings = Settings(home=home, data_docs=False)
    generate(GeneratorConfig(customers=300, days=3, start=START, seed=11), settings.landing_dir)
    for d in (START, START + timedelta(days=1)):
        ingest(settings, d, data_docs=False)
        run_ledger(settings, d)
    return settings


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "select table_name, list(column_name order by column_index) from duckdb_columns() "
        "where schema_name = 'main' and table_name in (select table_name from duckdb_tables()) "
        "group by table_name"
    ).fetchall()
    return dict(rows)


def test_replicated_warehouse_multiplies_id_tables_and_keeps_the_rest(
    base: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "tiled.duckdb"
    counts = tile_warehouse(base.warehouse_path, out, COPIES)
    src = duckdb.connect(str(base.warehouse_path), read_only=True)
    dst = duckdb.connect(str(out), read_only=True)
    try:
        tables = _tables(src)
        assert set(counts) == set(tables)
        for name, cols in tables.items():
            n = src.execute(f"select count(*) from {name}").fetchall()[0][0]
            expected = n * COPIES if set(cols) & set(ID_COLUMNS) else n
            assert counts[name] == expected, name
        # ids stay unique per replica and every reference resolves inside the copy
        assert dst.execute("select count(distinct customer_id) from customers").fetchall()[0][
            0
        ] == (
            COPIES
            * src.execute("select count(distinct customer_id) from customers").fetchall()[0][0]
        )
        orphans = dst.execute(
            "select count(*) from transactions t anti join customers c using (customer_id)"
        ).fetchall()[0][0]
        assert orphans == 0
        assert (
            dst.execute(
                "select count(*) from loans l anti join customers using (customer_id)"
            ).fetchall()[0][0]
            == 0
        )
        # laid out date by date, as nightly appends would have written it
        dts = [r[0] for r in dst.execute("select dt from loan_daily").fetchall()]
        assert dts == sorted(dts)
        # the views came along
        assert dst.execute("select count(*) from customer_versions").fetchall()[0][0] > 0
    finally:
        src.close()
        dst.close()


def test_replicated_delivery_verifies_and_ingests_cleanly(base: Settings, tmp_path: Path) -> None:
    d = START + timedelta(days=2)
    home = tmp_path / "scaled"
    settings = Settings(home=home, data_docs=False)
    tile_warehouse(base.warehouse_path, settings.warehouse_path, COPIES)
    src = base.landing_dir / f"dt={d}"
    rows = tile_delivery(src, settings.landing_dir / f"dt={d}", COPIES)
    delivery = open_delivery(settings.landing_dir, d)  # checksums and row counts match
    assert {f.extract.name: f.manifest_rows for f in delivery.files} == rows
    original = open_delivery(base.landing_dir, d)
    assert all(rows[f.extract.name] == COPIES * f.manifest_rows for f in original.files)

    result = ingest(settings, d, data_docs=False)
    assert result.status == "LOADED"
    assert sum(result.rows_quarantined.values()) == 0  # every replica's references are known
    assert result.rows_loaded == rows
    ledger = run_ledger(settings, d)
    ingest(base, d, data_docs=False)  # the same night on the single book
    single = run_ledger(base, d)
    assert ledger.ledger.active_loans == COPIES * single.ledger.active_loans


def test_a_scale_must_be_a_whole_number_of_base_books(tmp_path: Path) -> None:
    from benchmarks.bench_book import BaseBook, scale_book

    with pytest.raises(ValueError, match="not a multiple of the base book's 10,000"):
        scale_book(tmp_path, BaseBook(customers=10_000), 15_000, tmp_path)


def test_bench_refuses_to_build_inside_the_repository() -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "creditflow.cli", "bench", "--work-dir", str(repo / "bench-out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "outside the repository" in done.stdout + done.stderr
    assert not (repo / "bench-out").exists()


def test_the_verdict_names_every_stage_over_three_times_its_engine() -> None:
    from benchmarks.bench import markdown, verdict

    def stage(name: str, seconds: float, bare: float | None) -> dict:
        return {
            "stage": name, "rows": 1000, "seconds": seconds, "peak_mib": 100.0,
            "bare_seconds": bare, "bare_peak_mib": 90.0 if bare else None, "runs": 3,
            "rows_per_second": 1000 / seconds, "ratio": seconds / bare if bare else None,
        }  # fmt: skip

    night = {
        "seconds": 200.0,
        "peak_mib": 9000.0,
        "overhead_seconds": 1.0,
        "steps": {"ingest": 5.0},
    }
    results = {
        "machine": {"cores": 2, "memory_mib": 24000, "cpu": "x", "python": "3.11", "versions": {}, "code_version": "v"},
        "config": {"execution": "local"},
        "scales": [{
            "customers": 1_000_000, "delivery_rows": {"transactions": 10}, "night": night,
            "stages": [stage("ingest", 10.0, 2.0), stage("publication", 1.0, 0.5), stage("limits", 3.0, None)],
        }],
    }  # fmt: skip
    lines = verdict(results)
    assert "NOT met" in lines[0] and lines[0].count("NOT met") == 2  # time and memory
    assert lines[1] == "Over 3x their bare engine: ingest 5.0x."
    table = markdown(results)
    assert "| ingest | 1,000 | 10.00 |" in table and "| limits |" in table


def test_training_is_measured_once_and_listed_after_the_features() -> None:
    from benchmarks.bench import _with_training

    def row(stage: str, seconds: float) -> dict:
        return {"stage": stage, "rows": 10, "seconds": seconds, "peak_mib": 1.0,
                "bare_seconds": seconds / 2, "bare_peak_mib": 1.0}  # fmt: skip

    first = [
        row("ingest", 1.0),
        row("features", 3.0),
        row("training (fit)", 9.0),
        row("publication", 1.0),
    ]
    later = [row("ingest", 2.0), row("features", 5.0), row("publication", 3.0)]
    rows = _with_training([first, later, later])
    assert [r["stage"] for r in rows] == ["ingest", "features", "training (fit)", "publication"]
    assert [r["seconds"] for r in rows] == [2.0, 5.0, 9.0, 3.0]  # medians of 3 runs; training once
    assert [r["runs"] for r in rows] == [3, 3, 1, 3]

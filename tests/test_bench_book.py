"""The benchmark's replicated book: a faithful, larger copy that the real pipeline accepts."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from creditflow.bench_book import ID_COLUMNS, tile_delivery, tile_warehouse
from creditflow.delinquency import run_ledger
from creditflow.ingest import ingest
from creditflow.landing import open_delivery
from creditflow.settings import Settings
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

"""The warehouse moves forward: ordered, forward-only migrations under the run lock."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from creditflow.flows.backfill import backfill
from creditflow.flows.nightly import nightly
from creditflow.migrations import (
    LATEST,
    MIGRATIONS,
    Migration,
    WarehouseTooNew,
    migrate,
    schema_version,
)
from creditflow.settings import Settings, load_settings
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from creditflow.warehouse import open_warehouse

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "warehouse_v1.duckdb.gz"
OLD_BOOK = GeneratorConfig(customers=150, days=6, start=date(2026, 1, 5), seed=7)
SIXTH = date(2026, 1, 10)
# what two code versions legitimately write differently: run ids and the clock
VOLATILE = {"run_id", "previous_run_id", "code_version"}


def _add_column(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create table if not exists probe (a INTEGER)")


def _add_second(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("alter table probe add column if not exists b INTEGER")


def _fails(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("alter table probe add column c INTEGER")
    raise RuntimeError("halfway")


def test_a_new_warehouse_is_migrated_to_the_latest_version() -> None:
    """An empty database gets the baseline and then every migration, recorded in order."""
    con = duckdb.connect()
    assert schema_version(con) == 0
    applied = migrate(con)
    assert [m.version for m in applied] == list(range(2, LATEST + 1))
    assert schema_version(con) == LATEST
    rows = con.execute("select version from schema_migrations order by version").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    assert migrate(con) == []  # idempotent: nothing left to apply


def test_migrations_apply_in_order_once_and_a_failed_one_leaves_the_version_before() -> None:
    """Forward-only: each migration once, in its own transaction; a failure rolls it back."""
    con = duckdb.connect()
    first = (*MIGRATIONS, Migration(LATEST + 1, "probe table", _add_column))
    assert [m.version for m in migrate(con, first)][-1] == LATEST + 1
    second = (*first, Migration(LATEST + 2, "probe b", _add_second))
    assert [m.version for m in migrate(con, second)] == [LATEST + 2]
    broken = (*second, Migration(LATEST + 3, "fails halfway", _fails))
    with pytest.raises(RuntimeError, match="halfway"):
        migrate(con, broken)
    assert schema_version(con) == LATEST + 2
    columns = [r[0] for r in con.execute("describe probe").fetchall()]
    assert columns == ["a", "b"]  # the failed migration's column was rolled back


def test_a_warehouse_newer_than_the_code_is_refused() -> None:
    """Older code never writes into a layout it does not know."""
    con = duckdb.connect()
    migrate(con)
    con.execute("update schema_info set version = $v", {"v": LATEST + 5})
    with pytest.raises(WarehouseTooNew, match=f"schema version {LATEST + 5}"):
        migrate(con)


def _limit_rows(settings: Settings, d: date) -> list[tuple]:
    path = settings.published_dir / "limit_updates" / f"dt={d}" / "part-0.parquet"
    rel = duckdb.sql(f"select * from read_parquet('{path}')")
    keep = [c for c in rel.columns if c not in VOLATILE]
    return duckdb.sql(f"select {', '.join(keep)} from read_parquet('{path}')").fetchall()


@pytest.mark.xdist_group("prefect")
def test_a_night_runs_on_a_warehouse_written_before_migrations(
    prefect_harness: None, tmp_path: Path
) -> None:
    """A warehouse of schema version 1, written by the code before the restructuring, is
    migrated at the start of the next night, which then publishes what a warehouse built by
    today's code publishes."""
    landing = generate(OLD_BOOK, tmp_path / "landing").landing
    old = load_settings(home=tmp_path / "old", landing=landing, data_docs=False)
    old.warehouse_path.parent.mkdir(parents=True)
    with gzip.open(FIXTURE) as src, old.warehouse_path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    with open_warehouse(old.warehouse_path, read_only=True) as con:
        assert schema_version(con) == 1
        assert con.execute("select count(*) from runs").fetchall()[0][0] == 5

    result = nightly(run_date=SIXTH, overrides=old.model_dump(mode="json"))
    assert result["status"] == "SUCCESS"
    with open_warehouse(old.warehouse_path, read_only=True) as con:
        assert schema_version(con) == LATEST
        assert con.execute("select max(version) from schema_migrations").fetchall()[0][0] == LATEST

    new = load_settings(home=tmp_path / "new", landing=landing, data_docs=False)
    backfill(start=OLD_BOOK.start, end=SIXTH, overrides=new.model_dump(mode="json"))
    result, expected = _limit_rows(old, SIXTH), _limit_rows(new, SIXTH)
    assert len(result) == 151
    assert result == expected


def test_migration_4_fills_the_offers_of_the_last_30_days_loans() -> None:
    """An upgraded warehouse keeps the offer each recent loan was booked against: the
    customer's latest decision before the loan's date; older loans are left alone."""
    con = duckdb.connect()
    migrate(con, MIGRATIONS[:2])  # a warehouse of version 3, from before loan_offers
    con.execute(
        """insert into loans (loan_id, customer_id, dt, load_id) values
               ('L1', 'C1', date '2026-03-01', 'x'), ('L2', 'C1', date '2026-04-10', 'x'),
               ('L3', 'C2', date '2026-04-12', 'x'), ('L4', 'C3', date '2026-04-12', 'x')"""
    )
    con.execute(
        """create table limit_decisions as select * from (values
               (date '2026-04-08', 'C1', 'C', 0.15), (date '2026-04-09', 'C1', 'D', 0.2),
               (date '2026-04-11', 'C2', null, 0.18), (date '2026-04-12', 'C1', 'E', 0.24))
               t(dt, customer_id, risk_grade, offered_annual_rate)"""
    )
    migrate(con)
    rows = con.execute(
        "select loan_id, offer_dt, risk_grade, offered_annual_rate::DOUBLE from loan_offers order by 1"
    ).fetchall()
    assert rows == [
        ("L2", date(2026, 4, 9), "D", 0.2),  # the latest before its date, not the later one
        ("L3", date(2026, 4, 11), None, 0.18),  # the starter rule's offer
        ("L4", None, None, None),  # a customer never evaluated: no offer
    ]  # L1 is older than the last 30 evaluated days

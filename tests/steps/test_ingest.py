"""Ingest loads exactly what was delivered and passed the rules, and a bad delivery changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from creditflow.contract import EXTRACTS, MANIFEST_NAME
from creditflow.landing import DeliveryError
from creditflow.settings import Settings
from creditflow.steps.ingest import DeliveryRejected, ingest
from creditflow.upstream.generate import GenerationResult
from creditflow.warehouse import WarehouseBusy
from tests.support.deliveries import (
    copy_days,
    edit_manifest,
    read_text,
    refresh_manifest,
    warehouse_snapshot,
    write_raw,
    write_text,
)

DAYS = ["2026-01-20", "2026-01-21", "2026-01-22"]
D1, D2, D3 = (date.fromisoformat(d) for d in DAYS)


@pytest.fixture
def home(tmp_path: Path, small_book: GenerationResult) -> Settings:
    copy_days(small_book.landing, tmp_path / "landing", DAYS)
    return Settings(home=tmp_path)


def load_days(book: GenerationResult, home: Path, days: list[str]) -> Settings:
    """Copy ``days`` of a generated book under ``home`` and ingest them in order."""
    copy_days(book.landing, home / "landing", days)
    settings = Settings(home=home)
    for d in days:
        ingest(settings, date.fromisoformat(d))
    return settings


def manifest_rows(settings: Settings, day: str) -> dict[str, int]:
    m = json.loads((settings.landing_dir / f"dt={day}" / MANIFEST_NAME).read_text())
    return {name.split(".")[0]: meta["rows"] for name, meta in m["files"].items()}


def test_clean_days_load_completely_and_publish_data_quality(home: Settings) -> None:
    """Every delivered row of a clean book is loaded; every check passes and is published."""
    for d in (D1, D2, D3):
        result = ingest(home, d)
        assert result.status == "LOADED"
        assert result.rows_loaded == manifest_rows(home, d.isoformat())
        assert not any(result.rows_quarantined.values())
        assert result.data_docs is not None and Path(result.data_docs).is_file()
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    for e in EXTRACTS:
        counts = dict(
            con.execute(f"select dt::VARCHAR, count(*) from {e.name} group by all").fetchall()
        )
        assert counts == {
            d: manifest_rows(home, d)[e.name] for d in DAYS if manifest_rows(home, d)[e.name]
        }
    failed = con.execute("select count(*) from data_quality where not success").fetchone()
    assert failed == (0,)
    published = duckdb.sql(
        f"select dt, count(*) from read_parquet('{home.published_dir}/data_quality/*/*.parquet', hive_partitioning = true) group by all order by dt"
    ).fetchall()
    stored = con.execute(
        "select dt, count(*) from data_quality group by all order by dt"
    ).fetchall()
    assert published == stored and len(published) == 3


def test_loading_the_same_delivery_twice_leaves_the_warehouse_identical(home: Settings) -> None:
    """A repeat load is recognised by checksums; a forced reload rewrites the same rows."""
    ingest(home, D1)
    ingest(home, D2)
    before = warehouse_snapshot(home.warehouse_path)
    assert ingest(home, D2).status == "UNCHANGED"
    assert warehouse_snapshot(home.warehouse_path) == before
    assert ingest(home, D2, force=True).status == "LOADED"
    after = warehouse_snapshot(home.warehouse_path, exclude=("load_attempts", "loads"))
    assert after == {k: v for k, v in before.items() if k != "loads"}


def test_a_redelivery_replaces_exactly_that_date(home: Settings) -> None:
    """Reloading a corrected D2 replaces D2's rows and leaves D1 and D3 as they were."""
    for d in (D1, D2, D3):
        ingest(home, d)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    others = {
        e.name: con.execute(
            f"select * from {e.name} where dt <> $d order by all", {"d": D2}
        ).fetchall()
        for e in EXTRACTS
    }
    con.close()
    folder = home.landing_dir / f"dt={DAYS[1]}"
    behaviour = read_text(folder, "behaviour")
    write_text(
        folder, "behaviour", behaviour.head(behaviour.height - 10)
    )  # the corrected file has 10 fewer rows
    assert ingest(home, D2).status == "LOADED"
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    assert con.execute("select count(*) from behaviour where dt = $d", {"d": D2}).fetchone() == (
        behaviour.height - 10,
    )
    for e in EXTRACTS:
        assert (
            con.execute(f"select * from {e.name} where dt <> $d order by all", {"d": D2}).fetchall()
            == others[e.name]
        )


def _drop_manifest(folder: Path) -> None:
    (folder / MANIFEST_NAME).unlink()


def _tamper(folder: Path) -> None:
    with (folder / "transactions.csv.gz").open("ab") as f:
        f.write(b"\x00")


def _miscount(folder: Path) -> None:
    m = json.loads((folder / MANIFEST_NAME).read_text())
    m["files"]["loans.csv.gz"]["rows"] += 1
    (folder / MANIFEST_NAME).write_text(json.dumps(m))


def _drop_column(folder: Path) -> None:
    write_text(folder, "behaviour", read_text(folder, "behaviour").drop("wallet_balance"))


def _rename_column(folder: Path) -> None:
    write_text(folder, "transactions", read_text(folder, "transactions").rename({"amount": "amt"}))


def _not_gzip(folder: Path) -> None:
    (folder / "loans.csv.gz").write_text("loan_id,customer_id\n")
    refresh_manifest(folder)


def _wrong_date(folder: Path) -> None:
    edit_manifest(folder, business_date="2026-01-01")


def _unknown_file(folder: Path) -> None:
    m = json.loads((folder / MANIFEST_NAME).read_text())
    m["files"]["payments.csv.gz"] = {"rows": 0, "sha256": "0" * 64}
    (folder / MANIFEST_NAME).write_text(json.dumps(m))


def _missing_file(folder: Path) -> None:
    (folder / "installments.csv.gz").unlink()


def _unparseable(folder: Path) -> None:
    write_raw(
        folder, "customers.csv.gz", ",".join(EXTRACTS[0].column_names) + '\n"unterminated,quote\n'
    )


def _mostly_bad(folder: Path) -> None:
    df = read_text(folder, "behaviour")
    write_text(
        folder,
        "behaviour",
        df.with_columns(df["wallet_balance"].set(df["app_sessions"] == "1", "-1.00")),
    )


BREAKAGES = [
    (_drop_manifest, DeliveryError, r"_manifest\.json: missing.*incomplete"),
    (_tamper, DeliveryError, r"transactions\.csv\.gz: sha256 is .* the manifest says"),
    (_miscount, DeliveryError, r"loans\.csv\.gz: the manifest says \d+ rows, the file holds \d+"),
    (_drop_column, DeliveryError, r"behaviour\.csv\.gz: missing column\(s\) \['wallet_balance'\]"),
    (
        _rename_column,
        DeliveryError,
        r"transactions\.csv\.gz: missing column\(s\) \['amount'\]; unexpected column\(s\) \['amt'\]",
    ),
    (_not_gzip, DeliveryError, r"loans\.csv\.gz: cannot be read as UTF-8 gzip CSV"),
    (
        _wrong_date,
        DeliveryError,
        r"business_date is '2026-01-01', but the folder is for 2026-01-21",
    ),
    (_unknown_file, DeliveryError, r"lists 'payments\.csv\.gz', which is not a contract extract"),
    (
        _missing_file,
        DeliveryError,
        r"installments\.csv\.gz: listed in the manifest but not delivered",
    ),
    (
        _unparseable,
        DeliveryRejected,
        r"customers\.csv\.gz: 1 of 1 rows \(100\.0%\) break rules.*customers\.malformed_line",
    ),
    (
        _mostly_bad,
        DeliveryRejected,
        r"behaviour\.csv\.gz: \d+ of \d+ rows .* above the 5\.0% limit; most common: behaviour\.wallet_balance\.range",
    ),
]


@pytest.mark.parametrize(
    ("breakage", "error", "match"), BREAKAGES, ids=[b[0].__name__.strip("_") for b in BREAKAGES]
)
def test_a_bad_delivery_fails_loudly_and_changes_nothing(
    home: Settings, breakage, error, match
) -> None:
    """The error names the file and the rule; D1 stays loaded exactly as it was; D2 is absent."""
    ingest(home, D1)
    before = warehouse_snapshot(home.warehouse_path)
    breakage(home.landing_dir / f"dt={DAYS[1]}")
    with pytest.raises(error, match=match):
        ingest(home, D2)
    assert warehouse_snapshot(home.warehouse_path) == before


def test_a_rejected_delivery_is_recorded_as_a_failed_attempt(home: Settings) -> None:
    """Rows failing past the threshold leave a FAILED attempt with the reason, and no data."""
    ingest(home, D1)
    _mostly_bad(home.landing_dir / f"dt={DAYS[1]}")
    with pytest.raises(DeliveryRejected):
        ingest(home, D2)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    status, error = con.execute(
        "select status, error from load_attempts where business_date = $d", {"d": D2}
    ).fetchone()  # type: ignore[misc]
    assert status == "FAILED" and "above the 5.0% limit" in error
    assert con.execute("select count(*) from behaviour where dt = $d", {"d": D2}).fetchone() == (0,)


def test_the_threshold_is_configurable(home: Settings) -> None:
    """With a higher limit the same delivery loads, its bad rows quarantined."""
    ingest(home, D1)
    _mostly_bad(home.landing_dir / f"dt={DAYS[1]}")
    lenient = Settings(home=home.home, max_quarantine_share=1.0)
    result = ingest(lenient, D2)
    assert result.rows_quarantined["behaviour"] > 0
    assert (
        result.rows_loaded["behaviour"] + result.rows_quarantined["behaviour"]
        == manifest_rows(home, DAYS[1])["behaviour"]
    )


def test_every_injected_defect_is_caught_and_no_clean_row_is(
    damaged_book: GenerationResult, tmp_path: Path
) -> None:
    """Against the generator's sidecar: quarantine holds exactly the injected rows, by file and line."""
    days = [f"2026-01-{d}" for d in range(20, 27)]
    settings = load_days(damaged_book, tmp_path, days)
    assert damaged_book.defects_file is not None
    injected = [json.loads(line) for line in damaged_book.defects_file.read_text().splitlines()]
    expected = {
        (r["business_date"], r["extract"], r["line"])
        for r in injected
        if r["business_date"] in days
    }
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    found = {
        (str(d), e, line)
        for d, e, line in con.execute("select dt, extract, line from quarantine").fetchall()
    }
    assert len(expected) > 50
    assert found == expected
    # reconciliation: manifest rows = loaded + quarantined, for every extract and date
    assert con.execute(
        "select count(*) from data_quality where \"check\" like '%.reconciliation' and not success"
    ).fetchone() == (0,)


KIND_TO_RULE = {
    "duplicate": r"\.duplicate_row$",
    "null_required": r"\.not_null$",
    "unknown_customer": r"customer_id\.known$",
    "negative_amount": r"\.range$",
    "non_numeric_amount": r"\.type$",
    "date_outside": r"(registered_on\.not_future|business_date\.is_delivery_date|txn_ts\.within_window)$",
    "malformed_line": r"\.malformed_line$",
}


def test_quarantined_rows_name_the_rule_their_defect_breaks(
    damaged_book: GenerationResult, tmp_path: Path
) -> None:
    """Each injected defect is held back for the rule it breaks, not an incidental one."""
    import re

    days = [f"2026-01-{d}" for d in range(20, 24)]
    settings = load_days(damaged_book, tmp_path, days)
    assert damaged_book.defects_file is not None
    injected = {
        (r["business_date"], r["extract"], r["line"]): r["kind"]
        for r in map(json.loads, damaged_book.defects_file.read_text().splitlines())
        if r["business_date"] in days
    }
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    for d, e, line, rules in con.execute(
        "select dt, extract, line, failed_rules from quarantine"
    ).fetchall():
        kind = injected[(str(d), e, line)]
        assert any(re.search(KIND_TO_RULE[kind], r) for r in rules), (kind, rules)


def test_parquet_and_csv_deliveries_load_the_same_rows(
    small_book: GenerationResult, parquet_book: GenerationResult, tmp_path: Path
) -> None:
    """The format of the delivery changes nothing in the warehouse but the load id."""
    loaded = {}
    for label, book in (("csv", small_book), ("parquet", parquet_book)):
        copy_days(book.landing, tmp_path / label / "landing", DAYS[:2])
        settings = Settings(home=tmp_path / label)
        for d in (D1, D2):
            ingest(settings, d)
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        loaded[label] = {
            e.name: con.execute(f"select * exclude (load_id) from {e.name} order by all").fetchall()
            for e in EXTRACTS
        }
        con.close()
    assert loaded["csv"] == loaded["parquet"]


def test_a_second_process_is_refused_cleanly(home: Settings) -> None:
    """While another process holds the warehouse, ingest fails at once with a clear message."""
    home.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(home.warehouse_path)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        with pytest.raises(
            WarehouseBusy, match=r"in use by another creditflow run \(held by process \d+\)"
        ):
            ingest(home, D1)
        assert time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert ingest(home, D1).status == "LOADED"  # and the file is fine afterwards


def test_customer_history_is_kept_point_in_time(home: Settings) -> None:
    """A changed customer record is a new version; the old one stays, valid until the change."""
    folder = home.landing_dir / f"dt={DAYS[1]}"
    base = read_text(home.landing_dir / f"dt={DAYS[0]}", "customers")
    changed = base.head(1).with_columns(
        status=pl.lit("BLOCKED"), updated_at=pl.lit("2026-01-21T10:00:00+08:00")
    )
    write_text(folder, "customers", pl.concat([read_text(folder, "customers"), changed]))
    ingest(home, D1)
    ingest(home, D2)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    cid = changed["customer_id"][0]
    versions = con.execute(
        "select status, valid_from, valid_to from customer_versions where customer_id = $c order by valid_from",
        {"c": cid},
    ).fetchall()
    assert versions == [(base["status"][0], D1, D2), ("BLOCKED", D2, None)]
    assert con.execute(
        "select status from customers_current where customer_id = $c", {"c": cid}
    ).fetchone() == ("BLOCKED",)


def test_hostile_values_are_data_not_sql(home: Settings) -> None:
    """A value that looks like SQL is loaded or held back as a value; it never runs."""
    folder = home.landing_dir / f"dt={DAYS[0]}"
    df = read_text(folder, "transactions")
    evil = "x'); drop table customers; --"
    write_text(
        folder,
        "transactions",
        df.with_columns(
            df["merchant_category"].set(pl.Series([True] + [False] * (df.height - 1)), evil)
        ),
    )
    ingest(home, D1)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    assert con.execute(
        "select count(*) from transactions where merchant_category = $v", {"v": evil}
    ).fetchone() == (1,)
    assert con.execute("select count(*) from customers").fetchone()[0] > 0  # type: ignore[index]


def test_quarantine_command_lists_held_back_rows(
    damaged_book: GenerationResult, tmp_path: Path
) -> None:
    """`creditflow quarantine --date D --json` prints one object per held-back row, with key and rules."""
    from typer.testing import CliRunner

    from creditflow.cli import app

    copy_days(damaged_book.landing, tmp_path / "landing", DAYS[:1])
    runner = CliRunner()
    loaded = runner.invoke(
        app, ["--home", str(tmp_path), "ingest", "--date", DAYS[0]], env={"COLUMNS": "200"}
    )
    assert loaded.exit_code == 0, loaded.output
    listed = runner.invoke(
        app,
        [
            "--home",
            str(tmp_path),
            "quarantine",
            "--date",
            DAYS[0],
            "--extract",
            "transactions",
            "--json",
        ],
    )
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert rows and all(r["extract"] == "transactions" and r["failed_rules"] for r in rows)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert (
        len(rows)
        == con.execute("select count(*) from quarantine where extract = 'transactions'").fetchone()[
            0
        ]
    )  # type: ignore[index]


def test_ingest_command_reports_a_bad_delivery_without_a_traceback(home: Settings) -> None:
    """The CLI prints the delivery error and exits 1."""
    from typer.testing import CliRunner

    from creditflow.cli import app

    _drop_manifest(home.landing_dir / f"dt={DAYS[0]}")
    result = CliRunner().invoke(
        app, ["--home", str(home.home), "ingest", "--date", DAYS[0]], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "_manifest.json: missing" in result.output and "Traceback" not in result.output


def test_a_relative_home_works(
    small_book: GenerationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default HOME is the relative ./data: loading and Data Docs work from there."""
    monkeypatch.chdir(tmp_path)
    copy_days(small_book.landing, Path("data") / "landing", DAYS[:1])
    result = ingest(Settings(home=Path("data")), D1)
    assert result.status == "LOADED"
    assert (
        result.data_docs is not None
        and Path(result.data_docs).is_absolute()
        and Path(result.data_docs).is_file()
    )

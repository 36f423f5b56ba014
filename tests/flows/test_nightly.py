"""The nightly and backfill flows, run for real under Prefect over a few weeks of synthetic data."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from creditflow.flows.backfill import backfill, plan
from creditflow.flows.nightly import NightFailed, nightly
from creditflow.flows.runs import lock_path
from creditflow.flows.schedule import Reprocess
from creditflow.models.registry import Registry
from creditflow.policy.decisions import PUBLISHED
from creditflow.settings import Settings, load_settings
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from creditflow.warehouse import WarehouseBusy
from tests.support.champions import hand_champion
from tests.support.deliveries import copy_days, read_text, refresh_manifest, write_text

# one worker runs this module's tests in order: they share one backfilled home
pytestmark = [pytest.mark.xdist_group("nightly"), pytest.mark.usefixtures("prefect_harness")]

BOOK = GeneratorConfig(customers=400, days=22, start=date(2026, 2, 1), seed=12)
FIRST = BOOK.start
LAST = FIRST + timedelta(days=BOOK.days - 2)  # the backfill leaves the last day for the model test
DAYS = [FIRST + timedelta(days=i) for i in range(BOOK.days - 1)]
DAILY_TABLES = (
    "limit_updates", "loan_delinquency", "delinquency_summary", "roll_rates", "vintage",
    "delinquency_rates", "data_quality", "runs", "model_runs", "pricing_summary",
    "customer_notices",
)  # fmt: skip


def _overrides(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json")


def _digests(published: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        str(p.relative_to(published)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(published.rglob("*.parquet"))
        if p.relative_to(published).parts[0] not in skip and "data_docs" not in p.parts
    }


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(BOOK, tmp_path_factory.mktemp("nightly") / "landing").landing


@pytest.fixture(scope="module")
def book(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[dict]]:
    settings = load_settings(home=tmp_path_factory.mktemp("home"), landing=landing, data_docs=False)
    results = backfill(start=FIRST, end=LAST, overrides=_overrides(settings))
    return settings, results


def test_every_date_is_published_with_contract_types(book: tuple[Settings, list[dict]]) -> None:
    settings, results = book
    assert [r["run_date"] for r in results] == DAYS
    assert all(r["status"] == "SUCCESS" for r in results)
    for table in DAILY_TABLES:
        parts = sorted((settings.published_dir / table).glob("dt=*/part-0.parquet"))
        assert [p.parent.name for p in parts] == [f"dt={d}" for d in DAYS], table
    # before any model: every row follows the starter rule, and says so
    updates = pl.read_parquet(settings.published_dir / "limit_updates", hive_partitioning=True)
    assert updates.columns == [*PUBLISHED, "dt"]  # the file's columns, then the path's dt
    assert updates["model_version"].null_count() == updates.height
    assert set(updates.filter(~pl.col("action").is_in(["FREEZE", "CLOSE"]))["policy_rule"]) <= {
        "starter", "delinquency.no_increase", "change.interval", "change.max_increase",
        "change.outstanding_floor", "cap.income",
    }  # fmt: skip
    schema = pq.read_schema(next((settings.published_dir / "limit_updates").rglob("*.parquet")))
    assert str(schema.field("new_limit").type) == "decimal128(18, 2)"
    assert str(schema.field("previous_limit").type) == "decimal128(18, 2)"
    assert str(schema.field("effective_from").type) == "date32[day]"
    assert str(schema.field("reason_codes").type) in ("list<element: string>", "list<item: string>")
    assert str(schema.field("customer_id").type) == "string"
    assert str(schema.field("offered_annual_rate").type) == "decimal128(8, 6)"
    # before any model every limit above 0 is priced at the starter rate, a limit of 0 not at all
    offered = updates.filter(pl.col("new_limit") > 0)
    assert offered.height > 100 and set(offered["pricing_rule"]) == {"pricing.starter"}
    assert (offered["offered_annual_rate"] == Decimal("0.18")).all()
    assert updates.filter(pl.col("new_limit") == 0)["offered_annual_rate"].null_count() == (
        updates.filter(pl.col("new_limit") == 0).height
    )
    # the balance on each limit row is the ledger's, to the cent
    loans = pl.read_parquet(settings.published_dir / "loan_delinquency", hive_partitioning=True)
    balances = loans.group_by("dt", "customer_id").agg(pl.col("outstanding_principal").sum())
    joined = updates.join(balances, on=["dt", "customer_id"], how="inner")
    assert joined.height > 100
    assert (joined["outstanding_balance"] == joined["outstanding_principal"]).all()
    assert joined["outstanding_balance"].dtype == pl.Decimal(18, 2)
    # every FREEZE, CLOSE and DECREASE says why; a rule's freeze names the rule in plain words
    adverse = updates.filter(pl.col("action").is_in(["FREEZE", "DECREASE", "CLOSE"]))
    assert (adverse["reason_codes"].list.len() > 0).all()
    kyc = adverse.filter(pl.col("policy_rule") == "eligibility.kyc")
    assert kyc.height and set(kyc["reason_codes"].list.first()) == {
        "identity verification level too low"
    }
    # a day's limits are effective the next day; the first evaluation of everyone is NEW
    first = updates.filter(pl.col("dt") == FIRST)
    assert (first["effective_from"] == FIRST + timedelta(days=1)).all()
    assert set(first["action"]) <= {"NEW", "FREEZE", "CLOSE"}


def test_every_row_traces_to_its_run_and_inputs(book: tuple[Settings, list[dict]]) -> None:
    settings, _ = book
    runs = pl.read_parquet(settings.published_dir / "runs", hive_partitioning=True)
    ok = runs.filter(pl.col("status") == "SUCCESS")
    assert ok.height == len(DAYS)
    by_date = dict(zip(ok["dt"], ok["run_id"], strict=True))
    for table in ("limit_updates", "loan_delinquency", "delinquency_summary", "data_quality", "pricing_summary", "customer_notices"):  # fmt: skip
        rows = pl.read_parquet(settings.published_dir / table, hive_partitioning=True)
        got = rows.group_by("dt").agg(pl.col("run_id").unique())
        for d, ids in got.iter_rows():
            assert list(ids) == [by_date[d]], (table, d)
    # the run names its inputs (each file with its checksum), code, policy and predecessor
    run = ok.filter(pl.col("dt") == DAYS[3]).row(0, named=True)
    assert run["previous_run_id"] == by_date[DAYS[2]]
    assert run["code_version"] and run["policy_version"]
    manifest = (settings.landing_dir / f"dt={DAYS[3]}" / "_manifest.json").read_text()
    assert {f["file"].rsplit("/", 1)[1] for f in run["input_files"]} == {
        "customers.csv.gz", "behaviour.csv.gz", "transactions.csv.gz", "loans.csv.gz", "installments.csv.gz",
    }  # fmt: skip
    assert all(f["sha256"] in manifest for f in run["input_files"])


def test_a_second_identical_backfill_changes_nothing(book: tuple[Settings, list[dict]]) -> None:
    settings, _ = book
    before = _digests(settings.published_dir)
    again = backfill(start=FIRST, end=LAST, overrides=_overrides(settings))
    assert again == []  # every date is published: nothing to do
    assert _digests(settings.published_dir) == before
    # reprocessing runs everything again and republishes the same bytes (the runs listing
    # gains the new attempts; that is its purpose)
    tail = DAYS[-4:]
    redo = backfill(
        start=tail[0], end=LAST, reprocess=Reprocess.all, overrides=_overrides(settings)
    )
    assert [r["run_date"] for r in redo] == tail
    assert _digests(settings.published_dir, skip=("runs",)) == {
        k: v for k, v in before.items() if not k.startswith("runs/")
    }
    assert all(r["later_dates_changed"] == [] for r in redo)


def test_plan_skips_published_dates(book: tuple[Settings, list[dict]]) -> None:
    settings, _ = book
    end = LAST + timedelta(days=2)
    assert plan(settings, FIRST, end, Reprocess.missing) == [LAST + timedelta(days=1), end]
    assert plan(settings, FIRST, end, Reprocess.failed) == []
    assert len(plan(settings, FIRST, end, Reprocess.all)) == len(DAYS) + 2
    with pytest.raises(ValueError, match="before"):
        plan(settings, end, FIRST, Reprocess.all)


def test_a_corrupted_date_stops_the_backfill_there(landing: Path, tmp_path: Path) -> None:
    days = [str(d) for d in DAYS[:6]]
    bad_landing = copy_days(landing, tmp_path / "landing", days)
    bad = DAYS[3]
    folder = bad_landing / f"dt={bad}"
    # the upstream changed a file after writing the manifest: its checksum no longer matches
    txns = read_text(folder, "transactions")
    write_text(folder, "transactions", txns.head(txns.height - 1), manifest=False)
    settings = load_settings(home=tmp_path / "home", landing=bad_landing, data_docs=False)
    with pytest.raises(NightFailed) as err:
        backfill(start=DAYS[0], end=DAYS[5], overrides=_overrides(settings))
    message = str(err.value)
    assert str(bad) in message and "transactions.csv.gz" in message and "sha256" in message
    published = settings.published_dir / "limit_updates"
    assert sorted(p.name for p in published.iterdir()) == [f"dt={d}" for d in DAYS[:3]]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        status = con.execute(
            "select run_date, status, error from runs order by run_date"
        ).fetchall()
    assert [(r[0], r[1]) for r in status] == [(d, "SUCCESS") for d in DAYS[:3]] + [(bad, "FAILED")]
    assert "sha256" in status[-1][2]
    # the upstream redelivers a good file; the same command carries on from the failed date
    refresh_manifest(folder)
    assert plan(settings, DAYS[0], DAYS[5], Reprocess.failed) == [bad]
    done = backfill(start=DAYS[0], end=DAYS[5], overrides=_overrides(settings))
    assert [r["run_date"] for r in done] == DAYS[3:6]
    assert sorted(p.name for p in published.iterdir()) == [f"dt={d}" for d in DAYS[:6]]


def test_rerunning_a_changed_date_lists_the_later_dates(landing: Path, tmp_path: Path) -> None:
    days = [str(d) for d in DAYS[:5]]
    own = copy_days(landing, tmp_path / "landing", days)
    settings = load_settings(home=tmp_path / "home", landing=own, data_docs=False)
    backfill(start=DAYS[0], end=DAYS[4], overrides=_overrides(settings))
    same = nightly(run_date=DAYS[1], overrides=_overrides(settings))
    assert same["later_dates_changed"] == []  # the same inputs: nothing downstream changed
    # a corrected redelivery of day 2 (one behaviour row fewer)
    folder = own / f"dt={DAYS[1]}"
    behaviour = read_text(folder, "behaviour")
    write_text(folder, "behaviour", behaviour.head(behaviour.height - 1))
    changed = nightly(run_date=DAYS[1], overrides=_overrides(settings))
    assert changed["run_id"] != same["run_id"]
    assert changed["later_dates_changed"] == DAYS[2:5]
    notices = changed["steps"]["notices"]
    assert notices["added"] == notices["withdrawn"] == notices["changed"] == 0
    # a second correction that changes what a customer is told: one customer's identity
    # check falls to level 1, so their limit is frozen and the night must say which notice
    # ids it added (and withdrew), so the messaging system never sends blindly
    customers = read_text(folder, "customers")
    who = customers["customer_id"][0]
    write_text(folder, "customers", customers.with_columns(
        pl.when(pl.col("customer_id") == who).then(pl.lit("1")).otherwise(pl.col("kyc_level")).alias("kyc_level")
    ))  # fmt: skip
    corrected = nightly(run_date=DAYS[1], overrides=_overrides(settings))
    assert corrected["steps"]["notices"]["added"] >= 1
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        added = con.execute(
            "select notice_type, customer_id from notice_revisions where run_id = $r and change = 'ADDED'",
            {"r": corrected["run_id"]},
        ).fetchall()
        counts = con.execute(
            "select row_counts from runs where run_id = $r", {"r": corrected["run_id"]}
        ).fetchall()
    assert ("LIMIT_FREEZE", who) in added
    assert '"added"' in str(counts[0][0])


def test_a_second_run_is_refused_at_once_or_waits(book: tuple[Settings, list[dict]], tmp_path: Path) -> None:  # fmt: skip
    settings, _ = book
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(settings.warehouse_path), "3"],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            t0 = time.monotonic()
            with pytest.raises(WarehouseBusy) as err:
                nightly(run_date=DAYS[0], overrides=_overrides(settings))
            assert time.monotonic() - t0 < 5  # refused at once, not after a timeout
            assert "in use by another creditflow run" in str(err.value)
            assert f"pid {holder.pid}" in str(err.value)
            # configured to wait: the run goes ahead once the other one is done
            waiting = _overrides(settings) | {"lock_wait_seconds": 30}
            result = nightly(run_date=DAYS[0], overrides=waiting)
            assert result["status"] == "SUCCESS"
            assert holder.wait(timeout=30) == 0
        finally:
            holder.kill()
    assert lock_path(settings).exists()


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from creditflow.flows.runs import run_lock
from creditflow.settings import load_settings
settings = load_settings(warehouse=Path(sys.argv[1]))
with run_lock(settings, "test holder"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_with_a_champion_the_night_scores_and_explains_adverse_actions(
    book: tuple[Settings, list[dict]],
) -> None:
    settings, _ = book
    night = LAST + timedelta(days=1)
    # A champion promoted by hand (no business date): trained on the warehouse's own features
    # with a label that leans on arrears, so that some limits come down.
    hand_champion(settings.warehouse_path, settings.models_dir, LAST, {"metrics": {"auc": 0.7}})
    registry = Registry(settings.models_dir)

    result = nightly(run_date=night, overrides=_overrides(settings))
    assert result["model_version"] == "m-hand"
    updates = pl.read_parquet(settings.published_dir / "limit_updates" / f"dt={night}" / "part-0.parquet")  # fmt: skip
    scored = updates.filter(pl.col("model_version") == "m-hand")
    assert scored.height == updates.height
    assert scored["pd"].null_count() == 0 and scored["score"].null_count() == 0
    assert set(scored["risk_grade"]) <= set("ABCDEFG")
    # a scored limit is priced by its risk: within the cap, and never cheaper for a riskier pd
    offered = scored.filter(pl.col("new_limit") > 0).sort("pd")
    assert offered.height > 0
    assert set(offered["pricing_rule"]) <= {"pricing.grade", "pricing.cost", "pricing.cap"}
    rates = offered["offered_annual_rate"].cast(pl.Float64)
    assert (rates > 0).all() and (rates <= 0.24).all()
    assert (rates.diff().drop_nulls() >= 0).all()
    summary = pl.read_parquet(settings.published_dir / "pricing_summary" / f"dt={night}" / "part-0.parquet")  # fmt: skip
    assert set(summary["risk_grade"]) >= set(offered["risk_grade"])
    assert summary["customers"].sum() == updates.height
    adverse = scored.filter(pl.col("action").is_in(["DECREASE", "FREEZE"]))
    assert adverse.height > 0
    assert (adverse["reason_codes"].list.len() > 0).all()
    # the model's own decisions are explained by features, not by rules
    by_model = adverse.filter(pl.col("policy_rule").is_in(["band", "expected_loss", "model.freeze", "change.outstanding_floor"]))  # fmt: skip
    assert by_model.height > 0
    from creditflow.models.scoring import PLAIN_NAMES
    from creditflow.policy.decisions import RULE_REASONS

    named = set(by_model["reason_codes"].explode().unique())
    assert named <= set(PLAIN_NAMES.values()) and not named & set(RULE_REASONS.values())
    # the retrain step ran (a champion, never trained here: due) and found too little history
    assert result["steps"]["retrain"]["due"]
    assert "too little matured history" in (result["steps"]["retrain"]["decision"] or "")
    assert registry.champion() == "m-hand"


def test_the_cli_runs_a_date_and_explains_a_limit(book: tuple[Settings, list[dict]]) -> None:
    settings, _ = book
    env = os.environ | {"CREDITFLOW_HOME": str(settings.home), "CREDITFLOW_LANDING": str(settings.landing_dir), "COLUMNS": "200"}  # fmt: skip
    cli = [str(Path(sys.executable).with_name("creditflow"))]
    out = subprocess.run([*cli, "backfill", "--start", str(FIRST), "--end", str(LAST), "--dry-run"], env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert "would run 0 dates" in out.stdout
    runs = subprocess.run([*cli, "runs", "--json"], env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert '"status": "SUCCESS"' in runs.stdout
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cid = con.execute(
            "select customer_id from limit_decisions where dt = $d and action = 'FREEZE' limit 1",
            {"d": LAST},
        ).fetchall()[0][0]
    explained = subprocess.run([*cli, "limits", "explain", cid, "--date", str(LAST)], env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert cid in explained.stdout and "binds" in explained.stdout and "FREEZE" in explained.stdout
    missing = subprocess.run([*cli, "limits", "explain", "NOBODY"], env=env, capture_output=True, text=True)  # fmt: skip
    assert (
        missing.returncode == 1
        and "no limit decision for customer NOBODY" in missing.stderr + missing.stdout
    )

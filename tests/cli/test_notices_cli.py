"""``creditflow notices`` and the pricing line of ``creditflow limits explain``, run as the
installed command over homes the real pipeline built.

The book is the published_book fixture (14 nights, starter rule throughout; its loans are too
young for reminders, so its notices are limit notices, most on the first night). In a copy, the
last date (no notices) is rerun twice through ``creditflow run``: with a policy that notifies
every FREEZE and CLOSE decision (notices added), then with the packaged policy and a champion
promoted by hand (those withdrawn, the model's own added). Its limits end up priced from the
model's pd, for the pricing line of ``limits explain``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import duckdb
import pyarrow.parquet as pq
import pytest

from creditflow.policy.config import DEFAULT_POLICY_FILE
from creditflow.policy.notice_types import NOTICE_TYPES
from creditflow.settings import Settings, load_settings
from tests.support.champions import hand_champion

# the tests sharing the published_book fixture run on one worker, so it is built once
pytestmark = pytest.mark.xdist_group("published_book")

FIRST = date(2026, 3, 1)  # the first night of the published_book fixture: every limit is new
LAST = date(2026, 3, 14)  # its last night: no notices
CLI = str(Path(sys.executable).with_name("creditflow"))


def creditflow(
    settings: Settings, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "CREDITFLOW_HOME": str(settings.home),
        "CREDITFLOW_LANDING": str(settings.landing_dir),
        "CREDITFLOW_DATA_DOCS": "false",
        "COLUMNS": "250",
    }
    return subprocess.run([CLI, *args], env=env | (extra_env or {}), capture_output=True, text=True)


def query(settings: Settings, sql: str, params: dict | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def stored(settings: Settings, d: date = FIRST) -> list[tuple[str, str, str]]:
    """(notice_id, notice_type, customer_id) of the date, straight from the warehouse."""
    return query(
        settings,
        "select notice_id, notice_type, customer_id from customer_notices where dt = $d",
        {"d": d},
    )


# --- listing --------------------------------------------------------------------------------


def test_the_table_lists_every_notice_of_the_date(published_book: Settings) -> None:
    notices = stored(published_book)
    assert notices, "the book has notices on its last night"
    out = creditflow(published_book, "notices", "--date", str(FIRST))
    assert out.returncode == 0, out.stderr
    assert f"notices for {FIRST}: {len(notices):,}" in out.stdout
    for notice_id, kind, customer in notices:
        line = next(row for row in out.stdout.splitlines() if notice_id in row)
        assert kind in line and customer in line
    assert "send after: Asia/Shanghai" in out.stdout


def test_type_filter_lists_only_that_type(published_book: Settings) -> None:
    notices = stored(published_book)
    kind = max(NOTICE_TYPES, key=lambda t: sum(n[1] == t for n in notices))
    wanted = {n[0] for n in notices if n[1] == kind}
    out = creditflow(published_book, "notices", "--date", str(FIRST), "--type", kind.lower())
    assert out.returncode == 0, out.stderr
    listed = set(re.findall(r"\b[0-9a-f]{32}\b", out.stdout))
    assert listed == wanted
    assert f"({kind}): {len(wanted):,}" in out.stdout


def test_customer_filter_lists_only_their_notices(published_book: Settings) -> None:
    notices = stored(published_book)
    customer = notices[0][2]
    out = creditflow(published_book, "notices", "--date", str(FIRST), "--customer", customer)
    assert out.returncode == 0, out.stderr
    listed = set(re.findall(r"\b[0-9a-f]{32}\b", out.stdout))
    assert listed == {n[0] for n in notices if n[2] == customer}
    nobody = creditflow(published_book, "notices", "--date", str(FIRST), "--customer", "C[bold]")
    assert nobody.returncode == 0 and "(for C[bold]): 0" in nobody.stdout


def test_json_has_every_column_in_iso_and_exact_decimals(published_book: Settings) -> None:
    out = creditflow(published_book, "notices", "--date", str(FIRST), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["business_date"] == str(FIRST) and len(doc["runs"]) == 1
    assert "revisions" not in doc
    rows = query(
        published_book,
        """select notice_id, amount_due, new_limit, offered_annual_rate, due_date, send_after
           from customer_notices where dt = $d""",
        {"d": FIRST},
    )
    by_id = {r["notice_id"]: r for r in doc["notices"]}
    assert set(by_id) == {r[0] for r in rows}
    for notice_id, amount, limit, rate, due, send_after in rows:
        got = by_id[notice_id]
        for key, value in (
            ("amount_due", amount),
            ("new_limit", limit),
            ("offered_annual_rate", rate),
        ):
            assert got[key] == (None if value is None else str(value))
            assert value is None or Decimal(got[key]) == value
        assert got["due_date"] == (None if due is None else due.isoformat())
        sent = datetime.fromisoformat(got["send_after"])
        assert sent == send_after and got["send_after"].endswith("+08:00")
        assert isinstance(got["reasons"], list)


def test_an_unknown_type_is_one_line_naming_the_valid_ones(published_book: Settings) -> None:
    out = creditflow(published_book, "notices", "--date", str(FIRST), "--type", "REMINDER")
    assert out.returncode == 1
    said = (out.stdout + out.stderr).strip()
    assert len(said.splitlines()) == 1, said
    assert "unknown notice type 'REMINDER'" in said
    assert all(t in said for t in NOTICE_TYPES)


def test_a_date_without_notices_computed_says_so(published_book: Settings) -> None:
    before = date(2026, 2, 1)
    out = creditflow(published_book, "notices", "--date", str(before))
    assert out.returncode == 1
    assert f"no notices computed for {before}" in out.stdout + out.stderr


def test_a_date_computed_without_notices_lists_none(published_book: Settings) -> None:
    assert not stored(published_book, LAST)
    out = creditflow(published_book, "notices", "--date", str(LAST), "--revisions")
    assert out.returncode == 0, out.stderr
    assert f"notices for {LAST}: 0" in out.stdout
    assert f"{LAST} was computed once: no rerun added or withdrew a notice" in out.stdout
    doc = json.loads(creditflow(published_book, "notices", "--date", str(LAST), "--json").stdout)
    assert doc["notices"] == [] and len(doc["runs"]) == 1


# --- a rerun with a champion and other notice settings --------------------------------------


@pytest.fixture(scope="module")
def rerun(
    published_book: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, subprocess.CompletedProcess[str]]:
    """A copy of the book whose last date ``creditflow run`` reran twice: with every FREEZE
    and CLOSE decision notified, then with the packaged policy and a champion promoted by hand.
    Gives the copy's settings and what the second rerun printed."""
    import prefect.settings

    root = tmp_path_factory.mktemp("notices_rerun")
    shutil.copytree(published_book.home, root / "home")
    settings = load_settings(
        home=root / "home", landing=published_book.landing_dir, data_docs=False
    )
    prefect_api = {"PREFECT_API_URL": str(prefect.settings.PREFECT_API_URL.value())}
    text, n = re.subn(
        r'(?m)^limit_notices = "change"',
        'limit_notices = "every_decision"',
        DEFAULT_POLICY_FILE.read_text(encoding="utf-8"),
    )
    assert n == 1
    policy = root / "every_decision.toml"
    policy.write_text(text, encoding="utf-8")
    first = creditflow(
        settings, "--policy-file", str(policy), "run", "--date", str(LAST), extra_env=prefect_api
    )
    assert first.returncode == 0, first.stdout + first.stderr

    hand_champion(
        settings.warehouse_path,
        settings.models_dir,
        LAST,
        {
            "metrics": {"auc": 0.7, "ks": 0.3, "gini": 0.4},
            "windows": {"oot_start": "2026-02-01", "oot_end": "2026-02-28"},
        },
    )
    second = creditflow(settings, "run", "--date", str(LAST), extra_env=prefect_api)
    assert second.returncode == 0, second.stdout + second.stderr
    return settings, second


def revisions_of(settings: Settings, run_id: str | None = None) -> list[tuple]:
    """(run_id, change, notice_id, notice_type, customer_id) of LAST's reruns, from the table."""
    return query(
        settings,
        """select run_id, change, notice_id, notice_type, customer_id from notice_revisions
           where dt = $d and ($r::VARCHAR is null or run_id = $r)""",
        {"d": LAST, "r": run_id},
    )


def latest_run(settings: Settings) -> str:
    return query(
        settings,
        "select run_id from runs where run_date = $d order by attempt desc limit 1",
        {"d": LAST},
    )[0][0]


def test_the_run_prints_the_offered_rates_and_the_notices(
    rerun: tuple[Settings, subprocess.CompletedProcess[str]],
) -> None:
    settings, out = rerun
    run_id = latest_run(settings)
    changes = [c[1] for c in revisions_of(settings, run_id)]
    added, withdrawn = changes.count("ADDED"), changes.count("WITHDRAWN")
    changed = changes.count("CHANGED")
    assert withdrawn > 0  # every_decision notified more than the packaged policy does
    assert f"{run_id}: m-hand;" in out.stdout
    assert f"notices (rerun: {added:,} added, {withdrawn:,} withdrawn, {changed:,} changed)" in out.stdout  # fmt: skip
    assert (
        f"the rerun added {added:,}, withdrew {withdrawn:,} and changed {changed:,}" in out.stdout
    )
    low, high, priced, no_rate = query(
        settings,
        """select min(offered_annual_rate), max(offered_annual_rate), count(offered_annual_rate),
                  count(*) filter (where new_limit = 0)
           from limit_decisions where dt = $d""",
        {"d": LAST},
    )[0]
    assert (
        f"offered rates on {LAST}: {float(low):.2%} .. {float(high):.2%} for {priced:,} limits ("
        in out.stdout
    )
    assert f"{no_rate:,} limits of 0 get no rate" in out.stdout
    total = query(settings, "select count(*) from customer_notices where dt = $d", {"d": LAST})
    assert f"notices on {LAST}: {total[0][0]:,}" in out.stdout


def test_revisions_show_what_the_reruns_added_and_withdrew(
    rerun: tuple[Settings, subprocess.CompletedProcess[str]],
) -> None:
    settings, _ = rerun
    changes = revisions_of(settings)
    assert {"ADDED", "WITHDRAWN"} <= {c[1] for c in changes} <= {"ADDED", "WITHDRAWN", "CHANGED"}
    table = creditflow(settings, "notices", "--date", str(LAST), "--revisions")
    assert table.returncode == 0, table.stderr
    n = {k: sum(c[1] == k for c in changes) for k in ("ADDED", "WITHDRAWN", "CHANGED")}
    title = f"reruns of {LAST}: {n['ADDED']:,} notices added, {n['WITHDRAWN']:,} withdrawn, {n['CHANGED']:,} changed"  # fmt: skip
    assert title in table.stdout
    for run_id, change, notice_id, kind, customer in changes:
        line = next(row for row in table.stdout.splitlines() if notice_id in row and change in row)
        assert run_id in line and kind in line and customer in line

    listing = creditflow(settings, "notices", "--date", str(LAST), "--revisions", "--json")
    doc = json.loads(listing.stdout)
    assert len(doc["runs"]) == 3  # the backfill's night and the two reruns
    assert sorted(tuple(r.values()) for r in doc["revisions"]) == sorted(changes)
    # the latest rerun's additions and changes are the notices now, its withdrawals are gone
    now = {n["notice_id"] for n in doc["notices"]}
    for _, change, notice_id, *_ in revisions_of(settings, latest_run(settings)):
        assert (notice_id in now) == (change in ("ADDED", "CHANGED"))

    freeze = creditflow(
        settings, "notices", "--date", str(LAST), "--type", "LIMIT_FREEZE", "--revisions", "--json"
    )
    got = sorted(tuple(r.values()) for r in json.loads(freeze.stdout)["revisions"])
    assert got == sorted(c for c in changes if c[3] == "LIMIT_FREEZE") and got


def test_the_nights_artifacts_show_the_notice_mix_and_the_pricing(
    rerun: tuple[Settings, subprocess.CompletedProcess[str]],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    settings, _ = rerun
    flow_run = query(
        settings, "select flow_run_id from runs where run_id = $r", {"r": latest_run(settings)}
    )[0][0]
    with get_client(sync_client=True) as client:
        only_this_run = ArtifactFilterFlowRunId(any_=[UUID(flow_run)])
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=only_this_run))
    artifacts = {a.key: a.data for a in found}
    summary = str(artifacts["nightly-summary"])
    total = query(settings, "select count(*) from customer_notices where dt = $d", {"d": LAST})
    assert f"- notices: {total[0][0]:,}; this rerun added" in summary
    assert "- pricing: " in summary and "pricing.cost" in summary

    def table(key: str) -> list[dict]:
        data = artifacts[key]
        return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]

    by_type = dict(
        query(
            settings,
            "select notice_type, count(*) from customer_notices where dt = $d group by 1",
            {"d": LAST},
        )
    )
    mix = {r["notice_type"]: r["notices"] for r in table("notice-mix")}
    assert mix == {t: by_type.get(t, 0) for t in NOTICE_TYPES}
    published = pq.read_table(
        settings.published_dir / "pricing_summary" / f"dt={LAST}" / "part-0.parquet"
    ).to_pylist()
    shown = table("pricing-summary")
    assert [r["grade"] for r in shown] == [r["risk_grade"] for r in published]
    assert [r["customers"] for r in shown] == [r["customers"] for r in published]


# --- limits explain: the pricing line -------------------------------------------------------


def pct(value: object) -> str:
    return f"{float(value):.2%}"  # type: ignore[arg-type]


def explained(settings: Settings, customer: str, d: date) -> list[str]:
    out = creditflow(settings, "limits", "explain", customer, "--date", str(d))
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.startswith("pricing:")]


def test_explain_prices_a_starter_limit_and_a_limit_of_0(published_book: Settings) -> None:
    d = LAST - timedelta(days=1)
    starter, zero = (
        query(
            published_book,
            f"select customer_id from limit_decisions where dt = $d and {cond} order by customer_id limit 1",
            {"d": d},
        )[0][0]
        for cond in ("pricing_rule = 'pricing.starter'", "new_limit = 0")
    )
    assert explained(published_book, starter, d) == [
        "pricing: starter rate 18.00% (pricing.starter)"
    ]
    assert explained(published_book, zero, d) == ["pricing: no rate (limit 0)"]


def test_explain_prices_a_scored_limit_by_grade_and_cost(
    rerun: tuple[Settings, subprocess.CompletedProcess[str]],
) -> None:
    settings, _ = rerun
    rows = query(
        settings,
        """select distinct on (pricing_rule) pricing_rule, customer_id, risk_grade,
                  offered_annual_rate, grade_rate, cost_rate, expected_loss_rate
           from limit_decisions where dt = $d and new_limit > 0 order by pricing_rule, customer_id""",
        {"d": LAST},
    )
    assert "pricing.cost" in {r[0] for r in rows}, rows
    for rule, customer, grade, offered, grade_rate, cost_rate, loss in rows:
        assert explained(settings, customer, LAST) == [
            f"pricing: grade {grade} rate {pct(grade_rate)}, cost build-up {pct(cost_rate)} "
            f"(funding, operating, expected loss {pct(loss)}, margin) -> offered {pct(offered)} ({rule})"
        ]


def test_the_demo_summary_shows_the_offers_and_the_notices(
    rerun: tuple[Settings, subprocess.CompletedProcess[str]],
) -> None:
    from rich.console import Console

    from creditflow.cli.summary import demo_summary

    settings, _ = rerun
    out = io.StringIO()
    demo_summary(Console(file=out, width=250, color_system=None), settings, LAST)
    text = out.getvalue()
    priced = query(
        settings,
        "select count(offered_annual_rate) from limit_decisions where dt = $d",
        {"d": LAST},
    )[0][0]
    assert f"offered rates on {LAST}: " in text and f"for {priced:,} limits" in text
    total = query(settings, "select count(*) from customer_notices where dt = $d", {"d": LAST})
    assert f"notices on {LAST}: {total[0][0]:,} (" in text
    assert f"creditflow notices --date {LAST}" in text

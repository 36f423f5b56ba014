"""A run killed (SIGKILL) in the middle of publishing, then rerun, equals an uninterrupted run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from creditflow.flows.backfill import backfill
from creditflow.flows.nightly import nightly
from creditflow.settings import load_settings
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig

pytestmark = pytest.mark.usefixtures("prefect_harness")

BOOK = GeneratorConfig(customers=300, days=3, start=date(2026, 4, 1), seed=5)
DAY1, DAY2 = BOOK.start, BOOK.start + timedelta(days=1)

# Runs `creditflow run --date DAY2` and stops in the middle of publishing: the night's
# partitions are staged and being swapped in; the ledger's reports for the date are in place,
# its limit_updates not yet. The parent SIGKILLs it there.
_KILL_POINT = r"""
import os, sys, time
from pathlib import Path
import creditflow.publish as catalog

real_swap = catalog._swap

def swap_or_wait(tmp: Path, final: Path) -> None:
    if final.parent.parent.name == "limit_updates":
        # straight to the file descriptor: Prefect turns print() inside a flow into log records
        os.write(1, f"\nSWAPPING {final}\n".encode())
        time.sleep(float(sys.argv[2]))  # the parent kills it long before
    real_swap(tmp, final)

catalog._swap = swap_or_wait
from creditflow.cli import app
app(["run", "--date", sys.argv[1]])
"""


def _files(published: Path) -> dict[str, str]:
    """Every published partition but the runs listing (which records the extra attempt)."""
    return {
        str(p.relative_to(published)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(published.glob("*/dt=*/*"))
        if p.relative_to(published).parts[0] != "runs"
    }


def test_sigkill_while_publishing_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    landing = generate(BOOK, tmp_path / "landing").landing
    reference = load_settings(home=tmp_path / "reference", landing=landing, data_docs=False)
    backfill(start=DAY1, end=DAY2, overrides=reference.model_dump(mode="json"))

    killed = load_settings(home=tmp_path / "killed", landing=landing, data_docs=False)
    backfill(start=DAY1, end=DAY1, overrides=killed.model_dump(mode="json"))
    env = os.environ | {
        "CREDITFLOW_HOME": str(killed.home),
        "CREDITFLOW_LANDING": str(landing),
        "CREDITFLOW_DATA_DOCS": "false",
    }
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_POINT, str(DAY2), "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        assert child.stdout is not None
        lines = []
        for line in child.stdout:
            lines.append(line)
            if "SWAPPING" in line:
                break
        else:
            pytest.fail("the run ended before publishing limit_updates:\n" + "".join(lines[-30:]))
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL

    # What the kill left: the day's reports are swapped in; its limit_updates and the tables
    # staged after it (pricing_summary, customer_notices) are not: their staged files sit
    # outside every table folder, where no reader looks. No table folder holds anything but
    # complete partitions.
    published = killed.published_dir
    unswapped = ["customer_notices", "limit_updates", "pricing_summary"]
    assert (published / "loan_delinquency" / f"dt={DAY2}" / "part-0.parquet").exists()
    assert not any((published / table / f"dt={DAY2}").exists() for table in unswapped)
    staged = sorted(p.name.split("-")[0] for p in (published / ".staging").iterdir())
    assert staged == unswapped
    tables = [p for p in published.iterdir() if p.is_dir() and p.name[0] not in "._"]
    assert len(tables) >= 8
    for table in tables:
        assert all(f.name == "part-0.parquet" for f in table.rglob("*") if f.is_file()), table

    result = nightly(run_date=DAY2, overrides=killed.model_dump(mode="json"))
    assert result["status"] == "SUCCESS"
    assert not list((published / ".staging").iterdir())
    assert _files(published) == _files(reference.published_dir)
    with duckdb.connect(str(killed.warehouse_path), read_only=True) as con:
        attempts = con.execute(
            "select status, error from runs where run_date = $d order by attempt", {"d": DAY2}
        ).fetchall()
    assert [a[0] for a in attempts] == ["FAILED", "SUCCESS"]
    assert "interrupted" in attempts[0][1]

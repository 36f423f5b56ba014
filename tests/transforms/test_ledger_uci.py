"""Real data: the UCI Taiwan statements, replayed as deliveries, come out of the ledger as reported.

Data: "Default of credit card clients" (Yeh & Lien, 2009; UCI #350, DOI 10.24432/C55S3H,
CC BY 4.0). The mapping is documented in creditflow/upstream/uci_replay.py.
"""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from creditflow.settings import Settings
from creditflow.steps.delinquency import run_ledger
from creditflow.steps.ingest import ingest
from creditflow.upstream.uci_replay import Replay, replay
from tests.support.books import datasets_dir

UCI = datasets_dir() / "uci_credit_card" / "UCI_Credit_Card.csv"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Replay, pl.DataFrame]:
    if not UCI.exists():
        pytest.fail(f"{UCI} is missing: the shared datasets are part of the workspace")
    settings = Settings(home=tmp_path_factory.mktemp("uci"))
    r = replay(UCI, settings.landing_dir)
    for d in r.dates:
        ingest(settings, d, data_docs=False)
        run_ledger(settings, d)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    got = pl.from_arrow(
        con.sql(
            "select loan_id, dt as statement_date, bucket, dpd from loan_daily"
        ).to_arrow_table()
    )
    assert isinstance(got, pl.DataFrame)
    return r, r.statuses.join(got, on=["loan_id", "statement_date"], how="left")


def test_all_30000_clients_are_in_the_ledger_on_every_statement(
    replayed: tuple[Replay, pl.DataFrame],
) -> None:
    """Six statements x 30,000 clients, each with a ledger row."""
    _, joined = replayed
    assert joined.height == 6 * 30_000
    assert joined["bucket"].null_count() == 0


def test_every_payment_consistent_status_is_reproduced_exactly(
    replayed: tuple[Replay, pl.DataFrame],
) -> None:
    """Where the statements can come from repayments, the ledger's bucket is the reported delay."""
    _, joined = replayed
    consistent = joined.filter(pl.col("consistent"))
    assert consistent.height > 0.9 * joined.height  # 94.0% of client-months on this data
    mismatched = consistent.filter(pl.col("bucket") != pl.col("expected_bucket"))
    assert mismatched.height == 0, mismatched.head()


def test_the_first_statement_distribution_is_the_reported_one(
    replayed: tuple[Replay, pl.DataFrame],
) -> None:
    """April 2005: the bucket distribution of the ledger equals the UCI repayment-status distribution."""
    _, joined = replayed
    april = joined.filter(pl.col("month") == 0)
    expected = april.group_by("expected_bucket").len().sort("expected_bucket").rows()
    got = april.group_by("bucket").len().sort("bucket").rows()
    assert got == expected
    assert dict(got)["M0"] < 30_000  # the book has real delinquency to reproduce


def test_inconsistent_statements_are_the_known_quirk(replayed: tuple[Replay, pl.DataFrame]) -> None:
    """Inconsistent client-months are jumps to a longer delay than a month allows, never the reverse."""
    _, joined = replayed
    bad = joined.filter(~pl.col("consistent"))
    assert bad.height > 0
    # the ledger shows less delay than reported there (money is never taken back), never more
    order = {b: i for i, b in enumerate(["M0", "M1", "M2", "M3", "M4", "M5", "M6+"])}
    assert all(order[g] < order[e] for g, e in bad.select("bucket", "expected_bucket").rows())

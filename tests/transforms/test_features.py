"""Features are point in time (no leakage); labels are the contract's target, null until matured."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from creditflow.transforms.features import features, labels
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.books import delivery_dirs
from tests.support.deliveries import copy_days
from tests.support.oracle import build_daily_dpd, load_as_warehouse, run_ledger

BOOK = GeneratorConfig(customers=1200, days=140, start=date(2025, 10, 1), seed=8)
DAYS = [BOOK.start + timedelta(days=i) for i in range(BOOK.days)]
T = DAYS[70]  # an observation date with history before it and deliveries after it


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(BOOK, tmp_path_factory.mktemp("features") / "landing").landing


@pytest.fixture(scope="module")
def full(landing: Path) -> duckdb.DuckDBPyConnection:
    con = load_as_warehouse(landing)
    run_ledger(con, BOOK.start, DAYS[-1])
    return con


def test_features_do_not_see_the_future(
    landing: Path, full: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Features for t are identical whether or not the 69 later days are in the warehouse."""
    upto = [
        p.name.removeprefix("dt=")
        for p in delivery_dirs(landing)
        if p.name.removeprefix("dt=") <= T.isoformat()
    ]
    copy_days(landing, tmp_path / "landing", upto)
    past = load_as_warehouse(tmp_path / "landing")
    run_ledger(past, BOOK.start, T)
    with_future = features(full, T).fetchall()
    without = features(past, T).fetchall()
    assert len(with_future) > 1000
    assert with_future == without


def test_one_row_per_customer_known_on_the_date(full: duckdb.DuckDBPyConnection) -> None:
    """Every customer registered by t, once; nobody registered later."""
    rows = features(full, T).to_arrow_table()
    ids = rows.column("customer_id").to_pylist()
    assert len(ids) == len(set(ids))
    known = full.execute(
        "select count(distinct customer_id) from customers where dt <= $t", {"t": T}
    ).fetchall()[0][0]
    assert len(ids) == known


def test_labels_are_null_until_the_window_closes(full: duckdb.DuckDBPyConnection) -> None:
    """With the ledger at day 139, t + 90 beyond it has no label; earlier dates do, 0 or 1."""
    open_window = labels(full, DAYS[60]).fetchall()
    assert open_window and all(label is None for _, _, label in open_window)
    matured = labels(full, DAYS[45]).fetchall()
    assert matured and {label for _, _, label in matured} == {0, 1}


def test_labels_match_the_oracle(full: duckdb.DuckDBPyConnection) -> None:
    """Bad means reaching 30+ dpd on some loan on one of the 90 days after t (from-scratch oracle)."""
    t = DAYS[40]
    build_daily_dpd(full, DAYS[-1].isoformat())
    expected = full.execute(
        """
        with pop as (select customer_id from daily where d = $t group by all
                     having sum(outstanding_principal) > 0 and max(dpd) < 30)
        select p.customer_id, coalesce(max(d.dpd) >= 30, false)::INTEGER
        from pop p left join daily d on d.customer_id = p.customer_id and d.d > $t and d.d <= $t + 90
        group by all order by 1
        """,
        {"t": t},
    ).fetchall()
    got = [(c, label) for _, c, label in labels(full, t).fetchall()]
    assert got == expected
    assert 0 < sum(label for _, label in got) < len(got)


def test_window_and_threshold_are_configurable(full: duckdb.DuckDBPyConnection) -> None:
    """A shorter window matures sooner; a higher threshold finds fewer bads."""
    t = DAYS[60]
    assert all(label is not None for _, _, label in labels(full, t, window_days=60).fetchall())
    bad_30 = sum(label for _, _, label in labels(full, DAYS[40]).fetchall())
    bad_60 = sum(label for _, _, label in labels(full, DAYS[40], dpd_threshold=60).fetchall())
    assert bad_60 < bad_30

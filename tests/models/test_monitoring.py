"""When the nightly run retrains, score stability against stored bins, and dated champions."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from creditflow.models.metrics import psi, psi_against, score_bins
from creditflow.models.monitoring import RetrainPolicy, retrain_due
from creditflow.models.registry import Registry

NIGHT = date(2026, 5, 1)
WEEKLY = RetrainPolicy(every_days=7, psi_threshold=0.25)


@pytest.mark.parametrize(
    ("champion", "last_trained_days_ago", "tonight_psi", "due", "why"),
    [
        (None, None, None, True, "no champion yet"),
        (None, 3, None, False, "was not promoted"),  # a failed challenger is not retried nightly
        (None, 7, None, True, "no champion yet"),
        ("m1", None, 0.01, True, "scheduled"),
        ("m1", 6, 0.01, False, "next scheduled training in 1 days"),
        ("m1", 7, 0.01, True, "scheduled"),
        ("m1", 1, 0.25, True, "PSI 0.250"),  # drift does not wait for the week
        ("m1", 1, 0.249, False, "in force"),
    ],
)
def test_retrain_when_due(
    champion: str | None,
    last_trained_days_ago: int | None,
    tonight_psi: float | None,
    due: bool,
    why: str,
) -> None:
    last = None if last_trained_days_ago is None else NIGHT - timedelta(days=last_trained_days_ago)
    got, reason = retrain_due(
        NIGHT, champion=champion, last_trained=last, tonight_psi=tonight_psi, policy=WEEKLY
    )
    assert got is due
    assert why in reason


def test_stored_bins_give_the_same_psi_as_the_samples() -> None:
    rng = np.random.default_rng(1)
    train, same, shifted = rng.beta(2, 30, 5000), rng.beta(2, 30, 5000), rng.beta(4, 30, 5000)
    edges, shares = score_bins(train)
    assert len(edges) == len(shares) - 1 and abs(sum(shares) - 1) < 1e-12
    assert psi_against(edges, shares, shifted) == pytest.approx(psi(train, shifted))
    assert psi_against(edges, shares, same) < 0.02 < 0.25 < psi_against(edges, shares, shifted)
    # an empty bin tonight is smoothed, not an infinite PSI
    assert np.isfinite(psi_against(edges, shares, np.full(100, train.max() + 1)))


def test_the_champion_of_a_date_is_the_one_in_force_then(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(np.array([[0.0], [1.0]]), label=[0, 1]),
        1,
    )
    for v in ("m1", "m2", "m3"):
        registry.save(v, booster, {"version": v})
    registry.promote("m1", "gate", date(2026, 3, 1), automatic=True)
    registry.promote("m2", "gate", date(2026, 3, 8), automatic=True)
    registry.promote("m2", "gate", date(2026, 3, 8), automatic=True)  # a rerun: recorded once
    assert registry.champion(date(2026, 2, 28)) is None
    assert registry.champion(date(2026, 3, 7)) == "m1"
    assert registry.champion(date(2026, 3, 8)) == "m2"
    # the night of 03-08 starts from m1; its own training decided m2
    assert registry.champion_before(date(2026, 3, 8)) == "m1"
    assert registry.champion(date(2026, 3, 8), excluding="m2") == "m1"
    # by hand, without a date: from the latest decision on, never reaching back before it
    registry.promote("m3", "promoted by hand")
    assert registry.champion() == "m3" == registry.champion(date(2026, 3, 8))
    assert registry.champion(date(2026, 3, 2)) == "m1"
    assert registry.champion_before(date(2026, 3, 8)) == "m3"  # a person's choice counts
    # a rollback is recorded too, and the history keeps every entry
    assert registry.rollback() == "m2"
    assert registry.champion() == "m2" and registry.champion(date(2026, 3, 7)) == "m1"
    assert len(json.loads((tmp_path / "champion.json").read_text())["history"]) == 4

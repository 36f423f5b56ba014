"""Every adverse action goes out with a reason: the features that pushed the risk up, or,
when no feature sits above the reference, the model's rule in words; a rule's action names
the rule."""

from __future__ import annotations

import numpy as np
import polars as pl
import xgboost as xgb

from creditflow.models.champion import Champion
from creditflow.models.dataset import Frame
from creditflow.models.scoring import PLAIN_NAMES
from creditflow.policy.decisions import MODEL_RULE_REASONS, RULE_REASONS, _with_reasons

NAMES = ["dpd_now", "worst_dpd_90"]


def _champion() -> tuple[Champion, Frame]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "seed": 1, "nthread": 1},
        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(int), feature_names=NAMES),
        10,
    )
    ids = np.array([f"C{i}" for i in range(3)])
    frame = Frame(x[:3], NAMES, ids, np.array([None] * 3), None)
    return Champion("m", booster, NAMES), frame


DECIDED = pl.DataFrame(
    {
        "customer_id": ["C0", "C1", "C2"],
        "action": ["DECREASE", "FREEZE", "CLOSE"],
        "pd": [0.2, 0.6, None],
        "policy_rule": ["band", "model.freeze", "eligibility.status_closed"],
    }
)


def test_model_reasons_are_features_and_a_rule_reason_is_the_rule_in_words() -> None:
    champion, frame = _champion()
    reference = np.full(len(NAMES), -10.0)  # every feature sits above it
    out = _with_reasons(DECIDED, champion, frame, reference)["reason_codes"].to_list()
    assert out[0] and out[1] and set(out[0] + out[1]) <= set(PLAIN_NAMES.values())
    assert out[2] == [RULE_REASONS["eligibility.status_closed"]]


def test_without_a_feature_above_the_reference_the_models_rule_stands_in() -> None:
    champion, frame = _champion()
    reference = np.full(len(NAMES), 10.0)  # no feature sits above it
    out = _with_reasons(DECIDED, champion, frame, reference)["reason_codes"].to_list()
    assert out[0] == [MODEL_RULE_REASONS["band"]]
    assert out[1] == [MODEL_RULE_REASONS["model.freeze"]]

"""How credit-risk teams measure a score: discrimination, calibration, stability.

AUC, ROC and Brier come from scikit-learn. KS is the largest gap between the cumulative
bad and good distributions, read off scikit-learn's ROC curve (max TPR - FPR). PSI has no
scikit-learn implementation; it is written here with empty bins smoothed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

PSI_EPSILON = 1e-4  # share given to an empty bin so the log stays finite


@dataclass(frozen=True)
class Metrics:
    n: int
    bad_rate: float
    auc: float
    gini: float
    ks: float
    brier: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def discrimination(y: np.ndarray, pd_: np.ndarray) -> Metrics:
    y = np.asarray(y, dtype=int)
    pd_ = np.asarray(pd_, dtype=float)
    if y.min() == y.max():
        raise ValueError("both goods and bads are needed to measure discrimination")
    auc = float(roc_auc_score(y, pd_))
    fpr, tpr, _ = roc_curve(y, pd_)
    return Metrics(
        n=len(y),
        bad_rate=float(y.mean()),
        auc=auc,
        gini=2 * auc - 1,
        ks=float(np.max(tpr - fpr)),
        brier=float(brier_score_loss(y, pd_)),
    )


def roc_points(y: np.ndarray, pd_: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """The ROC curve thinned to about ``points`` points, for the model card and the report."""
    fpr, tpr, _ = roc_curve(np.asarray(y, dtype=int), np.asarray(pd_, dtype=float))
    keep = np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int)
    keep = np.unique(np.append(keep, np.argmax(tpr - fpr)))  # the KS point always survives
    return {"fpr": [float(v) for v in fpr[keep]], "tpr": [float(v) for v in tpr[keep]]}


def deciles(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Calibration by decile of predicted pd: mean predicted next to observed bad rate."""
    order = np.argsort(pd_, kind="stable")
    out = []
    for k, idx in enumerate(np.array_split(order, bins), start=1):
        if len(idx) == 0:
            continue
        out.append(
            {
                "decile": k,
                "n": len(idx),
                "pd_min": float(pd_[idx].min()),
                "pd_max": float(pd_[idx].max()),
                "predicted": float(pd_[idx].mean()),
                "observed": float(np.asarray(y)[idx].mean()),
            }
        )
    return out


def score_bins(expected: np.ndarray, bins: int = 10) -> tuple[list[float], list[float]]:
    """Inner decile edges of a score sample and its share per bin: what PSI compares against.

    Kept in the model card so tonight's population can be checked against the training one
    without keeping the training scores themselves.
    """
    expected = np.asarray(expected, dtype=float)
    inner = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))[1:-1]
    shares = np.histogram(expected, _open(inner))[0] / len(expected)
    return [float(e) for e in inner], [float(v) for v in shares]


def _open(inner: np.ndarray | list[float]) -> np.ndarray:
    """Bin edges open at both ends, so every score falls in a bin."""
    return np.concatenate([[-np.inf], np.asarray(inner, dtype=float), [np.inf]])


def psi_against(edges: list[float], shares: list[float], actual: np.ndarray) -> float:
    """PSI of ``actual`` against stored bins; empty bins smoothed so the sum stays finite."""
    e = np.asarray(shares, dtype=float)
    a = np.histogram(np.asarray(actual, dtype=float), _open(edges))[0] / len(actual)
    e = np.where(e == 0, PSI_EPSILON, e)
    a = np.where(a == 0, PSI_EPSILON, a)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability of a score: bins are the expected sample's deciles; empty bins smoothed."""
    return psi_against(*score_bins(expected, bins), actual)

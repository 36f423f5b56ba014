"""When to retrain: a pure decision from the champion, the last trainings and tonight's PSI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class RetrainPolicy:
    every_days: int = 7  # weekly
    psi_threshold: float = 0.25  # tonight's scores against the champion's training scores


def retrain_due(
    run_date: date,
    *,
    champion: str | None,
    last_trained: date | None,
    tonight_psi: float | None,
    policy: RetrainPolicy,
) -> tuple[bool, str]:
    """Whether tonight's run trains a challenger, and why (recorded with the run).

    ``last_trained`` is the latest earlier date a model was actually fitted (not the nights
    that found too little matured history: those cost nothing and are retried every night).
    """
    days = None if last_trained is None else (run_date - last_trained).days
    if champion is None:
        if days is not None and days < policy.every_days:
            return False, f"no champion; the last challenger (trained {days} days ago) was not promoted"  # fmt: skip
        return True, "no champion yet"
    if tonight_psi is not None and tonight_psi >= policy.psi_threshold:
        return True, f"score PSI {tonight_psi:.3f} against the champion's training scores is at or above {policy.psi_threshold}"  # fmt: skip
    if days is None or days >= policy.every_days:
        return True, f"scheduled: every {policy.every_days} days"
    return False, f"champion {champion} in force; next scheduled training in {policy.every_days - days} days"  # fmt: skip

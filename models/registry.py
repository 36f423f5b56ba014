"""The model registry on disk, and the gate a challenger must pass to become champion.

``<models>/<version>/model.ubj`` (XGBoost's binary JSON) and ``card.json`` (features with
their monotone direction, parameters, windows, metrics, data fingerprint, code version);
``<models>/champion.json`` names the champion and keeps the history of promotions, so a
rollback returns to the previous one. Writes go through a temporary file and a rename.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import xgboost as xgb

CHAMPION = "champion.json"


@dataclass(frozen=True)
class Gate:
    """A challenger is promoted only if it is good enough, stable, and not worse than the champion."""

    min_auc: float = 0.65
    max_psi: float = 0.25
    max_auc_drop: float = 0.005  # below the champion's AUC on the same out-of-time window

    def decide(
        self, challenger_auc: float, challenger_psi: float, champion_auc: float | None
    ) -> tuple[bool, str]:
        if challenger_auc < self.min_auc:
            return False, f"AUC {challenger_auc:.4f} is below the floor {self.min_auc}"
        if challenger_psi >= self.max_psi:
            return False, f"score PSI {challenger_psi:.3f} is at or above {self.max_psi}"
        if champion_auc is None:
            return True, f"no champion yet; AUC {challenger_auc:.4f}, PSI {challenger_psi:.3f}"
        if challenger_auc < champion_auc - self.max_auc_drop:
            return False, (
                f"AUC {challenger_auc:.4f} is more than {self.max_auc_drop} below the champion's "
                f"{champion_auc:.4f} on the same window"
            )
        return (
            True,
            f"AUC {challenger_auc:.4f} vs champion {champion_auc:.4f} on the same window; PSI {challenger_psi:.3f}",
        )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, version: str, booster: xgb.Booster, card: dict) -> Path:
        folder = self.root / version
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".tmp-model.ubj"  # the extension tells XGBoost the format
        booster.save_model(str(tmp))
        tmp.replace(folder / "model.ubj")
        _write_atomic(
            folder / "card.json", json.dumps(card, indent=2, sort_keys=True, default=str) + "\n"
        )
        return folder

    def load(self, version: str) -> tuple[xgb.Booster, dict]:
        folder = self.root / version
        if not (folder / "model.ubj").is_file():
            raise KeyError(f"no model {version!r} in {self.root}")
        booster = xgb.Booster()
        booster.load_model(str(folder / "model.ubj"))
        return booster, json.loads((folder / "card.json").read_text(encoding="utf-8"))

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "model.ubj").is_file())

    def _pointer(self) -> dict:
        path = self.root / CHAMPION
        return (
            json.loads(path.read_text(encoding="utf-8"))
            if path.is_file()
            else {"champion": None, "history": []}
        )

    @staticmethod
    def _ordered(history: list[dict]) -> list[tuple[date, int, dict]]:
        """Promotions by the business date they take effect, then by when they were recorded."""
        return sorted(
            (date.fromisoformat(e["as_of"]) if e.get("as_of") else date.min, i, e)
            for i, e in enumerate(history)
        )

    def champion(
        self, as_of: date | None = None, *, excluding: str | None = None, at_start: bool = False
    ) -> str | None:
        """The champion in force for business date ``as_of`` (the latest one when None).

        Every promotion is dated with the business date it takes effect (an automatic one with
        the date whose run decided it), and the one in force on a date is the latest dated on
        or before it. So rerunning a past date picks the model it picked the first time, and a
        promotion decided later never reaches back. ``at_start`` leaves out the automatic
        decisions of ``as_of`` itself (what a night starts from, before its own training);
        ``excluding`` leaves out a version (a challenger is never compared with itself when
        its date is rerun). An undated entry, from an older registry, counts from the start.
        """
        return self._in_force(self._pointer()["history"], as_of, excluding, at_start)

    @classmethod
    def _in_force(
        cls,
        history: list[dict],
        as_of: date | None = None,
        excluding: str | None = None,
        at_start: bool = False,
    ) -> str | None:
        chosen = None
        for effective, _, entry in cls._ordered(history):
            if as_of is not None and effective > as_of:
                continue
            if entry["version"] == excluding:
                continue
            if at_start and entry.get("automatic") and effective == as_of:
                continue
            chosen = entry["version"]
        return chosen

    def champion_before(self, as_of: date) -> str | None:
        """The champion a run for ``as_of`` starts from, before its own decision."""
        return self.champion(as_of, at_start=True)

    def latest_decision(self) -> date | None:
        dated = [e["as_of"] for e in self._pointer()["history"] if e.get("as_of")]
        return date.fromisoformat(max(dated)) if dated else None

    def promote(
        self, version: str, reason: str, as_of: date | None = None, *, automatic: bool = False
    ) -> None:
        """Make ``version`` champion from business date ``as_of`` on (default: the latest date
        any decision took effect, so a promotion by hand wins from there). ``automatic`` marks
        a decision of the promotion gate in a run for ``as_of``."""
        if version not in self.versions():
            raise KeyError(f"no model {version!r} in {self.root}")
        pointer = self._pointer()
        as_of = as_of or self.latest_decision()
        entry = {
            "version": version,
            "reason": reason,
            "as_of": as_of.isoformat() if as_of else None,
            "automatic": automatic,
        }
        if any(
            e["version"] == version and e.get("as_of") == entry["as_of"] and e["reason"] == reason
            for e in pointer["history"]
        ):
            return  # the same decision again (a rerun of the date): recorded once
        pointer["history"].append(entry)
        self._write(pointer)

    def rollback(self, as_of: date | None = None) -> str:
        """Make the champion before the current one champion again, from ``as_of`` on; the
        history keeps both the promotion and the rollback. Returns the reinstated version."""
        pointer = self._pointer()
        ordered = [e["version"] for _, _, e in self._ordered(pointer["history"])]
        if not ordered:
            raise ValueError("there is no champion to roll back")
        current = ordered[-1]
        earlier = [
            v for v in ordered[: len(ordered) - 1 - ordered[::-1].index(current)] if v != current
        ]
        if not earlier:
            raise ValueError("there is no earlier champion to roll back to")
        self.promote(earlier[-1], f"rollback from {current}", as_of)
        return earlier[-1]

    def _write(self, pointer: dict) -> None:
        pointer["champion"] = self._in_force(pointer["history"])  # for people reading the file
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.root / CHAMPION, json.dumps(pointer, indent=2) + "\n")

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

    def champion(self, as_of: date | None = None) -> str | None:
        """The champion now, or the one in force for business date ``as_of``.

        A nightly run (and any rerun of it) uses the champion as of its date: the latest
        promotion decided on or before that date, or made by hand (those have no date and
        hold from then on). So rerunning a past date picks the model it picked the first time.
        """
        pointer = self._pointer()
        if as_of is None:
            return pointer["champion"]
        chosen = None
        for entry in pointer["history"]:
            decided = entry.get("as_of")
            if decided is None or date.fromisoformat(decided) <= as_of:
                chosen = entry["version"]
        return chosen

    def promote(self, version: str, reason: str, as_of: date | None = None) -> None:
        """Make ``version`` champion; ``as_of`` is the business date of an automatic decision."""
        if version not in self.versions():
            raise KeyError(f"no model {version!r} in {self.root}")
        pointer = self._pointer()
        entry = {
            "version": version,
            "reason": reason,
            "as_of": as_of.isoformat() if as_of else None,
        }
        if as_of is not None and any(
            e["version"] == version and e.get("as_of") == entry["as_of"] for e in pointer["history"]
        ):
            return  # the same decision again (a rerun of the date): recorded once
        pointer["history"].append(entry)
        pointer["champion"] = version
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.root / CHAMPION, json.dumps(pointer, indent=2) + "\n")

    def rollback(self) -> str:
        """Make the previous champion champion again; returns it."""
        pointer = self._pointer()
        history = pointer["history"]
        if len(history) < 2:
            raise ValueError("there is no earlier champion to roll back to")
        history.pop()
        pointer["champion"] = history[-1]["version"]
        _write_atomic(self.root / CHAMPION, json.dumps(pointer, indent=2) + "\n")
        return pointer["champion"]

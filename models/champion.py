"""The champion in force on a business date, loaded once: its version, booster and features."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import xgboost as xgb

from creditflow.models.registry import Registry


@dataclass(frozen=True)
class Champion:
    version: str
    booster: xgb.Booster
    names: list[str]

    @classmethod
    def load(cls, registry: Registry, as_of: date | None = None) -> Champion | None:
        """The champion in force for business date ``as_of`` (the current one when None)."""
        version = registry.champion(as_of)
        if version is None:
            return None
        booster, card = registry.load(version)
        return cls(version, booster, list(card["features"]["names"]))

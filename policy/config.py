"""The limit policy as a typed, versioned object read from a TOML file risk managers edit.

The packaged default is ``policy/limit_policy.toml``; ``CREDITFLOW_POLICY_FILE`` points at
another. Loading checks what the rules rely on (for instance that nothing rises from grade A
to G, which keeps a higher pd from ever getting a higher limit), so a bad edit fails when it
is loaded, with the field named, instead of producing odd limits at night.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from creditflow.contract import OCCUPATIONS
from creditflow.models.scoring import GRADES

DEFAULT_POLICY_FILE = Path(__file__).with_name("limit_policy.toml")
GRADE_NAMES = (*(g for g, _ in GRADES), "G")

CloseReason = Literal["status_closed", "status_blocked", "over_max_age", "under_min_age", "occupation", "kyc"]  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Eligibility(_Strict):
    min_age: int = Field(18, ge=0)
    max_age: int = Field(65, ge=0)
    excluded_occupations: tuple[str, ...] = ("STUDENT",)
    min_kyc_level: int = Field(2, ge=1, le=3)
    close_when: tuple[CloseReason, ...] = ("status_closed", "over_max_age")

    @model_validator(mode="after")
    def _check(self) -> Eligibility:
        unknown = set(self.excluded_occupations) - set(OCCUPATIONS)
        if unknown:
            raise ValueError(f"excluded_occupations has unknown values {sorted(unknown)}")
        # the contract's eligibility rules are a floor no policy may lower
        if self.min_age < 18 or self.max_age > 65:
            raise ValueError(f"ages must stay within 18..65 (the contract); got {self.min_age}..{self.max_age}")  # fmt: skip
        if self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        if "STUDENT" not in self.excluded_occupations:
            raise ValueError("excluded_occupations must keep STUDENT (the contract)")
        if self.min_kyc_level < 2:
            raise ValueError("min_kyc_level must be at least 2: kyc_level 1 is never eligible (the contract)")  # fmt: skip
        return self


class Delinquency(_Strict):
    # the contract: dpd >= 30 freezes and any dpd > 0 blocks increases; a policy may be stricter
    freeze_dpd: int = Field(30, ge=1, le=30)
    no_increase_dpd: int = Field(1, ge=1, le=1)


class ModelRules(_Strict):
    freeze_pd: float = Field(0.5, gt=0.0, le=1.0)
    lgd: float = Field(0.85, gt=0.0, le=1.0)


class Band(_Strict):
    amount: int = Field(ge=0)
    income_multiple: float = Field(ge=0.0)
    el_budget: float = Field(ge=0.0)


class Bands(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)  # one key per grade letter
    unknown_income_share: float = Field(0.5, ge=0.0, le=1.0)

    def grade(self, name: str) -> Band:
        extra = self.model_extra or {}
        try:
            return Band.model_validate(extra[name])
        except ValidationError as exc:
            raise ValueError(
                f"bands.{name}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
            ) from exc

    @model_validator(mode="after")
    def _check(self) -> Bands:
        extra = self.model_extra or {}
        missing = [g for g in GRADE_NAMES if g not in extra]
        unknown = [k for k in extra if k not in GRADE_NAMES]
        if missing or unknown:
            raise ValueError(f"bands need exactly the grades {GRADE_NAMES}; missing {missing}, unknown {unknown}")  # fmt: skip
        bands = [self.grade(g) for g in GRADE_NAMES]
        for field in ("amount", "income_multiple", "el_budget"):
            for i in range(1, len(bands)):
                if getattr(bands[i], field) > getattr(bands[i - 1], field):
                    raise ValueError(
                        f"bands.{GRADE_NAMES[i]}.{field} is above bands.{GRADE_NAMES[i - 1]}.{field}: "
                        "a riskier grade may not get more, or a higher pd could get a higher limit"
                    )
        return self


class Change(_Strict):
    max_increase_amount: int = Field(10000, ge=0)
    max_increase_share: float = Field(0.5, ge=0.0)
    min_increase_step: int = Field(1000, ge=0)
    min_days_between_increases: int = Field(30, ge=0)


class Starter(_Strict):
    amount_by_kyc: dict[int, int] = Field(default_factory=lambda: {2: 2000, 3: 5000})
    city_tier_factor: dict[int, float] = Field(
        default_factory=lambda: {1: 1.0, 2: 1.0, 3: 0.8, 4: 0.6, 5: 0.5}
    )
    income_multiple: float = Field(0.5, ge=0.0)
    unknown_income_share: float = Field(0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> Starter:
        if set(self.city_tier_factor) != {1, 2, 3, 4, 5}:
            raise ValueError("starter.city_tier_factor needs tiers 1 to 5")
        if any(v < 0 for v in self.city_tier_factor.values()):
            raise ValueError("starter.city_tier_factor factors must be >= 0")
        if any(v < 0 for v in self.amount_by_kyc.values()):
            raise ValueError("starter.amount_by_kyc amounts must be >= 0")
        return self


class LimitPolicy(_Strict):
    version: str
    product_cap: int = Field(200_000, ge=0, le=200_000)  # the regulatory ceiling holds always
    income_multiple: float = Field(4.0, ge=0.0, le=4.0)
    rounding: int = Field(100, ge=100, multiple_of=100)  # limits are multiples of 100 CNY
    eligibility: Eligibility = Eligibility()
    delinquency: Delinquency = Delinquency()
    model: ModelRules = ModelRules()
    bands: Bands
    change: Change = Change()
    starter: Starter = Starter()
    # the file's content hash, set by load_policy; part of the published policy version
    content_sha256: str = ""

    @property
    def full_version(self) -> str:
        return f"{self.version}+{self.content_sha256[:8]}" if self.content_sha256 else self.version

    @model_validator(mode="after")
    def _check(self) -> LimitPolicy:
        if self.product_cap % self.rounding:
            raise ValueError(f"product_cap {self.product_cap} is not a multiple of rounding {self.rounding}")  # fmt: skip
        return self


class PolicyError(ValueError):
    """A policy file that cannot be read or breaks a rule; names the file and the field."""


def load_policy(path: Path | None = None) -> LimitPolicy:
    path = path or DEFAULT_POLICY_FILE
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the limit policy: {exc}") from exc
    try:
        return LimitPolicy.model_validate(
            {**data, "content_sha256": hashlib.sha256(raw).hexdigest()}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{path}: invalid limit policy: {problems}") from exc

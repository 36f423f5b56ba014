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
from creditflow.policy.notice_types import NOTICE_TYPES, clock_minutes

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


# The contract's rate cap (loans: 0 < annual_rate <= 0.24), which is also China's judicial
# protection line for private lending: no policy may offer more.
RATE_CEILING = 0.24


class PricingCost(_Strict):
    """The cost build-up: the annual rate that covers funding, operations and the expected
    loss of the customer's pd, plus a margin."""

    funding_rate: float = Field(0.03, ge=0.0, le=RATE_CEILING)
    operating_rate: float = Field(0.025, ge=0.0, le=RATE_CEILING)
    margin: float = Field(0.015, ge=0.0, le=RATE_CEILING)
    lgd: float = Field(0.85, gt=0.0, le=1.0)
    # the model's pd is over this many days (the label: 30+ dpd within 90 days); the
    # expected-loss rate annualises it: 1 - (1 - pd) ^ (365 / pd_horizon_days)
    pd_horizon_days: int = Field(90, ge=1, le=365)


class Pricing(_Strict):
    """Risk-based pricing: the annual rate offered with every limit above 0."""

    max_annual_rate: float = Field(RATE_CEILING, gt=0.0)
    starter_rate: float = Field(0.18, gt=0.0)
    # offered rates are rounded up to this step (0.0001: one basis point), never past the cap
    rate_step: float = Field(0.0001, gt=0.0, le=0.01)
    # "floor": the cost build-up sets the rate, never below the grade's rate;
    # "override": the grade's rate is offered; the build-up is only reported (pricing_summary)
    grade_table: Literal["floor", "override"] = "floor"
    grade_rates: dict[str, float] = Field(
        default_factory=lambda: {
            "A": 0.072, "B": 0.09, "C": 0.1095, "D": 0.146, "E": 0.1825, "F": 0.219, "G": 0.24,
        }
    )  # fmt: skip
    # no [pricing.cost] section in the file: no build-up, the grade table prices
    cost: PricingCost | None = None

    @model_validator(mode="after")
    def _check(self) -> Pricing:
        if self.max_annual_rate > RATE_CEILING:
            raise ValueError(
                f"max_annual_rate {self.max_annual_rate} is above {RATE_CEILING}: the contract's "
                "rate cap and the judicial protection line for lending"
            )
        missing = [g for g in GRADE_NAMES if g not in self.grade_rates]
        unknown = [g for g in self.grade_rates if g not in GRADE_NAMES]
        if missing or unknown:
            raise ValueError(f"grade_rates need exactly the grades {GRADE_NAMES}; missing {missing}, unknown {unknown}")  # fmt: skip
        for name, value in (
            ("max_annual_rate", self.max_annual_rate),
            ("rate_step", self.rate_step),
        ):
            # on the DECIMAL(8,6) grid: a cap off it would round up past itself, a step
            # below it would be 0
            if abs(value * 1e6 - round(value * 1e6)) > 1e-6 or round(value * 1e6) < 1:
                raise ValueError(f"{name} {value} must be a whole number of millionths (rates are DECIMAL(8,6))")  # fmt: skip
        named = {"starter_rate": self.starter_rate} | {f"grade_rates.{g}": self.grade_rates[g] for g in GRADE_NAMES}  # fmt: skip
        for name, rate in named.items():
            if not 0.0 < rate <= self.max_annual_rate:
                raise ValueError(f"{name} {rate} is outside (0, max_annual_rate {self.max_annual_rate}]")  # fmt: skip
            if abs(rate * 1e6 - round(rate * 1e6)) > 1e-6:
                raise ValueError(f"{name} {rate} has more than 6 decimals (rates are DECIMAL(8,6))")  # fmt: skip
        for worse, better in zip(GRADE_NAMES[1:], GRADE_NAMES, strict=False):
            if self.grade_rates[worse] < self.grade_rates[better]:
                raise ValueError(
                    f"grade_rates.{worse} ({self.grade_rates[worse]}) is below grade_rates.{better} "
                    f"({self.grade_rates[better]}): a worse grade may not get a lower rate"
                )
        return self


class NoticeSettings(_Strict):
    """What the messaging system is asked to send, and when (times are Asia/Shanghai)."""

    due_soon_days: tuple[int, ...] = (3, 1)  # DUE_SOON this many days before the due date
    overdue_dpd: tuple[int, ...] = (1, 3, 7, 15, 30)  # OVERDUE on reaching these dpd
    quiet_start: str = "21:00"  # no notice is sent from quiet_start ...
    quiet_end: str = "08:00"  # ... to quiet_end: send_after moves to quiet_end
    # the time of day on the day after the business date each type is meant to go out
    send_at: dict[str, str] = Field(
        default_factory=lambda: {
            "DUE_SOON": "10:00", "DUE_TODAY": "09:00", "AUTO_DEBIT_FAILED": "00:00",
            "OVERDUE": "10:00", "LIMIT_NEW": "09:30", "LIMIT_INCREASE": "09:30",
            "LIMIT_DECREASE": "09:30", "LIMIT_FREEZE": "09:30", "LIMIT_CLOSE": "09:30",
        }
    )  # fmt: skip
    template_version: str = "v1"  # template_id is <notice_type>.<template_version>
    # "change": FREEZE and CLOSE notify when the customer enters that state (not every night
    # the state merely continues); "every_decision": on every FREEZE and CLOSE decision
    limit_notices: Literal["change", "every_decision"] = "change"

    @model_validator(mode="after")
    def _check(self) -> NoticeSettings:
        if any(k < 1 for k in self.due_soon_days) or len(set(self.due_soon_days)) != len(self.due_soon_days):  # fmt: skip
            raise ValueError("due_soon_days must be distinct whole days >= 1 (0 is DUE_TODAY)")
        if any(k < 1 for k in self.overdue_dpd) or len(set(self.overdue_dpd)) != len(self.overdue_dpd):  # fmt: skip
            raise ValueError("overdue_dpd must be distinct dpd values >= 1")
        unknown = set(self.send_at) - set(NOTICE_TYPES)
        missing = set(NOTICE_TYPES) - set(self.send_at)
        if unknown or missing:
            raise ValueError(f"send_at needs exactly the notice types {NOTICE_TYPES}; missing {sorted(missing)}, unknown {sorted(unknown)}")  # fmt: skip
        clocks = {"quiet_start": self.quiet_start, "quiet_end": self.quiet_end}
        clocks |= {f"send_at.{k}": v for k, v in self.send_at.items()}
        for name, value in clocks.items():
            clock_minutes(value, name)
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
    pricing: Pricing = Pricing()
    notices: NoticeSettings = NoticeSettings()
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

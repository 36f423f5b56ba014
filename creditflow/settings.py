"""Typed settings: one object, filled from flags, ``CREDITFLOW_*`` variables and defaults.

``CREDITFLOW_HOME`` is the root under which every default location lives, the way
``PREFECT_HOME`` and ``DAGSTER_HOME`` work; each location can still be set on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where creditflow reads and writes; every path defaults to a place under ``home``."""

    model_config = SettingsConfigDict(env_prefix="CREDITFLOW_", extra="forbid")

    # The settings that change what a night computes, and so are part of its run id; where
    # the files live and where the work runs are not (a laptop and a cluster give one run id).
    RESULT_FIELDS: ClassVar[tuple[str, ...]] = (
        "max_quarantine_share",
        "retrain_every_days",
        "retrain_psi",
        "gate_min_auc",
        "gate_max_psi",
        "gate_max_auc_drop",
    )

    home: Path = Path("data")
    landing: Path | None = None
    warehouse: Path | None = None
    published: Path | None = None
    models: Path | None = None
    # A date whose share of rule-breaking rows in any extract exceeds this fails as a whole.
    max_quarantine_share: float = Field(default=0.05, ge=0.0, le=1.0)
    # The limit policy file risk managers edit; the packaged default when unset.
    policy_file: Path | None = None
    # Retrain when due: every N days, when tonight's score PSI against the champion's training
    # scores reaches the threshold, or whenever there is no champion.
    retrain_every_days: int = Field(default=7, ge=1)
    retrain_psi: float = Field(default=0.25, gt=0.0)
    # The promotion gate (see models.registry.Gate).
    gate_min_auc: float = Field(default=0.65, ge=0.5, le=1.0)
    gate_max_psi: float = Field(default=0.25, gt=0.0)
    gate_max_auc_drop: float = Field(default=0.005, ge=0.0)
    # Render Great Expectations Data Docs in nightly runs (backfills render the last date only).
    data_docs: bool = True
    # How long a run waits for another process to release the warehouse before giving up.
    lock_wait_seconds: float = Field(default=0.0, ge=0.0)
    # Where the work runs, never what it computes (docs/scale_out.md): ``local`` (one process),
    # ``dask`` (an existing cluster at ``dask_scheduler``) or ``local-cluster`` (a
    # distributed.LocalCluster of ``dask_workers`` processes, for trying the cluster path).
    execution: Literal["local", "dask", "local-cluster"] = "local"
    dask_scheduler: str | None = None
    dask_workers: int = Field(default=2, ge=1)
    # Customer and loan hash shards: one Dask task per shard and stage.
    shards: int = Field(default=8, ge=1, le=4096)
    # Shard inputs and per-shard state; on a real cluster a file system every worker mounts.
    shard_root: Path | None = None

    @model_validator(mode="after")
    def _check_execution(self) -> Settings:
        if self.execution == "dask" and not self.dask_scheduler:
            raise ValueError(
                "execution 'dask' needs the scheduler's address: set CREDITFLOW_DASK_SCHEDULER "
                "(e.g. tcp://scheduler:8786), or use execution 'local-cluster' to start one here"
            )
        return self

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        # Derived here rather than in defaults so that moving HOME moves every default.
        if self.landing is None:
            self.landing = self.home / "landing"
        if self.warehouse is None:
            self.warehouse = self.home / "warehouse.duckdb"
        if self.published is None:
            self.published = self.home / "published"
        if self.models is None:
            self.models = self.home / "models"
        if self.shard_root is None:
            self.shard_root = self.home / "shards"
        return self

    @property
    def landing_dir(self) -> Path:
        assert self.landing is not None
        return self.landing

    @property
    def warehouse_path(self) -> Path:
        assert self.warehouse is not None
        return self.warehouse

    @property
    def published_dir(self) -> Path:
        assert self.published is not None
        return self.published

    @property
    def models_dir(self) -> Path:
        assert self.models is not None
        return self.models

    @property
    def shard_dir(self) -> Path:
        assert self.shard_root is not None
        return self.shard_root

    @property
    def distributed(self) -> bool:
        return self.execution != "local"

    def results_json(self) -> str:
        """``RESULT_FIELDS`` as JSON, for the run id."""
        return self.model_dump_json(include=set(self.RESULT_FIELDS))

    def describe(self) -> dict[str, str]:
        """The resolved locations, for ``creditflow settings`` and run records."""
        return {
            "home": str(self.home),
            "landing": str(self.landing_dir),
            "warehouse": str(self.warehouse_path),
            "published": str(self.published_dir),
            "models": str(self.models_dir),
            "policy_file": str(self.policy_file or "(packaged default)"),
            "execution": self.execution
            + (f" at {self.dask_scheduler}" if self.execution == "dask" else "")
            + (f", {self.shards} shards in {self.shard_dir}" if self.distributed else ""),
        }


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with explicit (flag) values on top; ``None`` means unset."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})

"""Where the tests' books come from: the landing zone's dated folders, and the real public
data sets the repository carries (datasets/, with their source and licence)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    """The public data sets: CREDITFLOW_DATASETS when set, else the repository's datasets/."""
    configured = os.environ.get("CREDITFLOW_DATASETS")
    return Path(configured) if configured else REPO / "datasets"


def delivery_dirs(landing: Path) -> list[Path]:
    return sorted(p for p in landing.iterdir() if p.name.startswith("dt="))

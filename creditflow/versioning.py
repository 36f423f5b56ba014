"""The code version every run records: the package version plus the git commit when known."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from creditflow import __version__

_REPO = Path(__file__).resolve().parent.parent


@cache
def code_version() -> str:
    """``0.1.0+g<sha>`` (``.dirty`` with uncommitted changes), or the bare version outside git."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"

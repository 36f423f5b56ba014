"""The code version every run records: the package version plus the git commit when known."""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from pathlib import Path

from creditflow import __version__

_REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(_REPO), *args], capture_output=True, text=True, check=True, timeout=5
    ).stdout.strip()


@cache
def code_version() -> str:
    """``0.1.0+g<sha>`` (``.dirty<hash of the diff>`` with uncommitted changes), or the bare
    version outside git."""
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    if not dirty:
        return f"{__version__}+g{sha}"
    # uncommitted edits: name them by content, so two different edits never share a version
    # (run ids hash the code version; same version must mean same code)
    diff = hashlib.sha256(_git("diff", "HEAD", "--no-color").encode()).hexdigest()[:8]
    return f"{__version__}+g{sha}.dirty{diff}"

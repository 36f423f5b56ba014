"""Check the rooms' import directions with import-linter (``lint-imports``).

creditflow installs its rooms under one import name from several top-level folders
(``[tool.setuptools.package-dir]``: flows/ is ``creditflow.flows``, and so on). import-linter
reads a package from one folder, so this assembles the package as an install would (a copy of
the sources, nothing built) and runs ``lint-imports`` on it with the contracts in
pyproject.toml. ``make test`` runs it; tests/test_architecture.py breaks a contract on purpose
and expects it to fail.

    python -m tests.support.layers            # exit 0 when every contract is kept
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def assemble(repo: Path, dest: Path) -> Path:
    """Lay the package's sources out under ``dest`` as the installed package has them, plus
    the benchmarks and the configuration; returns ``dest``."""
    config = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools.get("package-dir", {})
    for package in setuptools["packages"]:
        parent = next(
            (p for p in sorted(mapping, key=len, reverse=True) if package.startswith(p)), None
        )
        source = repo / mapping[parent] if parent else repo
        rest = package[len(parent) :].lstrip(".") if parent else package
        folder = source.joinpath(*rest.split(".")) if rest else source
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in folder.glob("*.py"):
            shutil.copy2(module, target / module.name)
    shutil.copytree(
        repo / "benchmarks", dest / "benchmarks", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(repo / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over an assembled tree (this interpreter's environment)."""
    command = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(command), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, check=False
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="creditflow-layers-") as tmp:
        done = lint_imports(assemble(REPO, Path(tmp)))
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

"""The SQL models of transforms/sql/, one file each, loaded by name."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def sql(name: str) -> str:
    """A SQL model from transforms/sql/."""
    return (files("creditflow.transforms") / "sql" / f"{name}.sql").read_text(encoding="utf-8")

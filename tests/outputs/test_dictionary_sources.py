"""The data dictionary's "defined in" entries point at code that exists."""

from __future__ import annotations

import re

import pytest

from creditflow.outputs.dictionary import TABLES
from tests.support.books import REPO

REFERENCE = re.compile(r"([a-z_/]+\.(?:py|sql|toml))(?::\s*([A-Za-z_][\w.]*))?")


def _references() -> list[tuple[str, str, str | None]]:
    out = []
    for table in TABLES:
        texts = [(table.name, table.source)] + [
            (f"{table.name}.{c.name}", c.defined_in) for c in table.columns if c.defined_in
        ]
        for where, text in texts:
            out += [(where, path, name) for path, name in REFERENCE.findall(text)]
    return out


@pytest.mark.parametrize(("where", "path", "name"), _references())
def test_each_reference_names_a_file_and_a_definition_in_it(
    where: str, path: str, name: str | None
) -> None:
    """Every file named exists; every function or class named after it is defined there."""
    file = REPO / path
    assert file.is_file(), f"{where}: {path} does not exist"
    if name:
        head = name.split(".")[0]
        text = file.read_text(encoding="utf-8")
        assert re.search(rf"^\s*(?:def|class)\s+{head}\b|^{head}\s*[:=]", text, re.M), (
            f"{where}: {path} defines no {head}"
        )


def test_new_limit_is_defined_by_the_rule_ladder() -> None:
    """The worked example of docs/architecture.md: one hop from the dictionary to the code."""
    table = next(t for t in TABLES if t.name == "limit_updates")
    assert table.column("new_limit").defined_in == "policy/ladder.py: decide"

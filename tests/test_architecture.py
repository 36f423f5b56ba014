"""The rooms' import directions hold, and breaking one fails the check `make test` runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.layers import REPO, assemble, lint_imports

ROOMS = ("flows", "steps", "transforms", "models", "policy", "creditflow", "benchmarks")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble(REPO, tmp_path_factory.mktemp("assembled"))


def test_every_contract_is_kept(tree: Path) -> None:
    """lint-imports passes on the code as it is."""
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # a transform reading the settings: compute must take plain arguments
        (
            "creditflow/transforms/ledger.py",
            "from creditflow.settings import Settings",
            "Compute takes",
        ),
        # the policy importing a step: the arrow would point up
        ("creditflow/policy/ladder.py", "import creditflow.steps.limits", "Rooms depend one way"),
        # a step importing Prefect
        ("creditflow/steps/delinquency.py", "import prefect", "Steps do a stage's IO"),
        # the upstream importing the pipeline
        ("creditflow/upstream/writer.py", "import creditflow.warehouse", "The upstream only knows"),
        # shipped code importing a benchmark
        ("creditflow/cli/common.py", "import benchmarks.bench", "Nothing shipped imports"),
    ],
)
def test_a_broken_direction_fails(
    tree: Path, tmp_path: Path, module: str, line: str, contract: str
) -> None:
    """One deliberate wrong import makes lint-imports fail and name the contract it broke."""
    broken = assemble(REPO, tmp_path / "broken")
    path = broken / module
    path.write_text(f"{line}  # noqa\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    done = lint_imports(broken)
    assert done.returncode != 0
    assert re.search(rf"{re.escape(contract)}.* BROKEN", done.stdout.replace("\n", " ")), (
        done.stdout
    )


def test_no_module_is_much_over_400_lines_and_no_two_share_a_name() -> None:
    """Small modules named for what they hold: about 400 lines at most (the run report and the
    synthetic upstream.s simulation excepted), and one file name per module across rooms."""
    modules = [
        p
        for room in ROOMS
        for p in (REPO / room).rglob("*.py")
        if "__pycache__" not in p.parts and p.name not in ("__init__.py", "__main__.py")
    ]
    long = {
        str(p.relative_to(REPO)): n
        for p in modules
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450 and p.name != "report.py"
    }
    assert not long
    names: dict[str, list[str]] = {}
    for p in modules:
        names.setdefault(p.name, []).append(str(p.relative_to(REPO)))
    assert {n: ps for n, ps in names.items() if len(ps) > 1} == {}

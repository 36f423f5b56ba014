"""Settings resolve from flags, CREDITFLOW_* variables and HOME; the CLI exposes every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditflow.cli import app
from creditflow.settings import Settings

runner = CliRunner()


def settings_via_cli(*args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result = runner.invoke(app, [*args, "settings", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # nothing set: everything under ./data
        (
            {},
            {
                "landing": "data/landing",
                "warehouse": "data/warehouse.duckdb",
                "published": "data/published",
                "models": "data/models",
            },
        ),
        # HOME moves every default
        (
            {"CREDITFLOW_HOME": "/srv/cf"},
            {
                "landing": "/srv/cf/landing",
                "warehouse": "/srv/cf/warehouse.duckdb",
                "published": "/srv/cf/published",
                "models": "/srv/cf/models",
            },
        ),
        # one location set on its own; the others still follow HOME
        (
            {"CREDITFLOW_HOME": "/srv/cf", "CREDITFLOW_WAREHOUSE": "/fast/w.duckdb"},
            {
                "landing": "/srv/cf/landing",
                "warehouse": "/fast/w.duckdb",
                "published": "/srv/cf/published",
                "models": "/srv/cf/models",
            },
        ),
    ],
)
def test_paths_derive_from_home(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: dict[str, str]
) -> None:
    """Each default lives under CREDITFLOW_HOME unless set on its own."""
    for name in ("HOME", "LANDING", "WAREHOUSE", "PUBLISHED", "MODELS"):
        monkeypatch.delenv(f"CREDITFLOW_{name}", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = Settings().describe()
    assert {k: result[k] for k in expected} == expected


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag beats the variable, which beats the default."""
    monkeypatch.setenv("CREDITFLOW_HOME", "/from/env")
    monkeypatch.setenv("CREDITFLOW_PUBLISHED", "/env/published")
    result = settings_via_cli("--home", "/from/flag", "--published", "/flag/published")
    assert result["home"] == "/from/flag"
    assert result["landing"] == "/from/flag/landing"
    assert result["published"] == "/flag/published"


def test_unknown_setting_is_rejected() -> None:
    """A typo in a setting name fails instead of being ignored."""
    with pytest.raises(ValueError, match="landin"):
        Settings(landin=Path("x"))  # type: ignore[call-arg]


def test_help_lists_every_command() -> None:
    """`creditflow --help` names each subcommand."""
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    registered = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert {"generate", "settings", "demo"} <= registered
    for name in registered:
        assert name in result.output


def test_generate_command_writes_a_landing_zone(tmp_path: Path) -> None:
    """The CLI writes the requested days where asked and reports what it did."""
    landing = tmp_path / "landing"
    result = runner.invoke(
        app,
        [
            "generate",
            "--customers",
            "200",
            "--days",
            "3",
            "--start",
            "2026-06-01",
            "--seed",
            "9",
            "--landing",
            str(landing),
            "--defects",
            "0.05",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in landing.iterdir()) == [
        "dt=2026-06-01",
        "dt=2026-06-02",
        "dt=2026-06-03",
    ]
    assert (tmp_path / "landing_defects.jsonl").stat().st_size > 0
    assert "Wrote 3 deliveries" in result.output


def test_generate_rejects_a_bad_date(tmp_path: Path) -> None:
    """A malformed --start is a usage error naming the option."""
    result = runner.invoke(
        app,
        ["generate", "--start", "2026-13-01", "--landing", str(tmp_path)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "--start" in result.output

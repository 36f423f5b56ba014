"""Each sharded stage declares every warehouse table its SQL reads, and windows as long.

On a cluster a shard's DuckDB holds only the rows a stage declares (transforms.inputs), so a
SQL model that starts reading another table, or a longer window, would make a cluster run
silently differ from a local one. These tests hold the declarations to the SQL.
"""

from __future__ import annotations

import re

import pytest

from creditflow.policy.decisions import LIMITS
from creditflow.transforms.features import FEATURES
from creditflow.transforms.inputs import Stage
from creditflow.transforms.ledger import LEDGER
from creditflow.transforms.queries import sql

# views of the warehouse, by the table they read
VIEWS = {"customer_versions": "customers", "customers_current": "customers"}
# temp tables a kernel builds itself before it reads them
BUILT = {"ledger_events"}


def tables_read(text: str) -> set[str]:
    """Relations a SQL model reads (after from/join), less its own CTEs."""
    text = re.sub(r"--[^\n]*", "", text)
    ctes = set(re.findall(r"(?:with|,)\s*([a-z_][a-z0-9_]*)\s+as\s*\(", text, flags=re.I))
    read = set(re.findall(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)\b", text, flags=re.I))
    return {VIEWS.get(t, t) for t in read - ctes - BUILT}


@pytest.mark.parametrize(
    ("stage", "models"),
    [
        (LEDGER, ("ledger_events", "ledger_state")),
        (FEATURES, ("features",)),
        (LIMITS, ("limit_inputs",)),
    ],
    ids=lambda v: v.name if isinstance(v, Stage) else ",".join(v),
)
def test_a_stage_declares_every_table_its_sql_reads(stage: Stage, models: tuple[str, ...]) -> None:
    """The tables of the stage's SQL models are all among its declared inputs."""
    result = set().union(*(tables_read(sql(m)) for m in models))
    assert result - set(stage.tables) == set()


def cte_bodies(text: str) -> dict[str, str]:
    """Each CTE of a SQL model (``name as ( ... )``) by name, its body up to the matching
    parenthesis."""
    text = re.sub(r"--[^\n]*", "", text)
    out = {}
    for match in re.finditer(r"([a-z_][a-z0-9_]*)\s+as\s*\(", text, flags=re.I):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out[match.group(1)] = text[match.end() : i - 1]
    return out


def window_violations(text: str, stage: Stage) -> list[str]:
    """CTEs that read a dated table further back than the stage declares, or without a lower
    bound on the date at all (a shard holds only the declared days)."""
    days = {t.table: t.days for t in stage.dated}
    out = []
    for name, body in cte_bodies(text).items():
        for table in tables_read(body) & set(days):
            back = [int(n) for n in re.findall(r"\$t\s*-\s*(\d+)", body)]
            if not back and re.search(r"\bdt\s*=\s*\$t\b", body):
                back = [1]  # the date itself
            if not back or max(back) > days[table]:
                out.append(f"{name} reads {table} {max(back, default='all')} days back")
    return out


def test_the_feature_windows_fit_the_declared_days() -> None:
    """Every CTE of features.sql that reads a dated table stays within its declared days."""
    assert window_violations(sql("features"), FEATURES) == []


def test_a_longer_window_is_caught() -> None:
    """Widening one CTE's window past the declaration fails the check above (it can fail)."""
    text = sql("features").replace(
        "and dt > $t - 90\n      and txn_type", "and dt > $t - 120\n      and txn_type"
    )
    assert text != sql("features")
    assert window_violations(text, FEATURES) == ["payment_events reads transactions 120 days back"]


def test_the_parser_sees_a_new_table() -> None:
    """A model that reads an undeclared table is caught (the check above can fail)."""
    text = sql("features") + "\nunion all select * from loan_archive"
    assert "loan_archive" in tables_read(text) - set(FEATURES.tables)


def test_the_sql_bucket_ladders_are_the_contracts() -> None:
    """ledger_state.sql and delinquency_summary.sql spell out the contract's bucket ladder."""
    from creditflow.contract import BUCKET_LADDER, BUCKETS

    case = re.search(r"case\s+(when dpd = 0.*?)\s+end as bucket", sql("ledger_state"), re.S)
    assert case is not None
    result = re.findall(r"when dpd (?:=|<=) (\d+) then '([^']+)'|else '([^']+)'", case.group(1))
    expected = [
        (str(high), name, "") if high is not None else ("", "", name)
        for name, high in BUCKET_LADDER
    ]
    assert result == expected
    listed = re.search(r"unnest\(\[([^\]]*)\]\) as bucket", sql("delinquency_summary"))
    assert listed is not None
    assert tuple(re.findall(r"'([^']+)'", listed.group(1))) == BUCKETS

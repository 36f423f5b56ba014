"""Forward-only migrations of the warehouse schema.

A warehouse records its schema version in ``schema_info`` and every migration applied to it
in ``schema_migrations``. ``migrate`` brings a warehouse of any earlier version to the
version this code expects, one migration at a time, each in its own transaction (a failed
migration leaves the version before it). It runs under the run lock when a night or a
hand-run step starts, so a warehouse that already holds months of history gains a new
table, column or rule without being rebuilt. A warehouse newer than the code is refused:
older code must not write into a layout it does not know.

To change the schema: append a ``Migration`` with the next version number; never edit or
reorder one that has shipped. Write its SQL out in full here (``alter table ... add column
if not exists ...``), not by importing another room's DDL, which will change after it ships.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from creditflow.versioning import code_version
from creditflow.warehouse import SCHEMA_VERSION, ensure_schema, has_table, scalar, transaction


class WarehouseTooNew(RuntimeError):
    """The warehouse was written by a newer creditflow."""


@dataclass(frozen=True)
class Migration:
    version: int  # the schema version after it
    name: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _record_migrations(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """create table if not exists schema_migrations (
            version INTEGER not null,
            name VARCHAR not null,
            applied_at TIMESTAMPTZ,   -- wall clock, for the audit trail only (null: the baseline)
            code_version VARCHAR
        )"""
    )
    con.execute(
        "insert into schema_migrations values ($v, 'baseline: the tables of schema version 1', null, null)",
        {"v": SCHEMA_VERSION},
    )


def _pricing_columns(con: duckdb.DuckDBPyConnection) -> None:
    # a warehouse from before pricing: its decisions gain the offer's columns (null on the
    # nights evaluated before; a rerun of such a night fills them)
    if not has_table(con, "limit_decisions"):
        return  # created with these columns when the first limits run
    for column, kind in (
        ("offered_annual_rate", "DECIMAL(8,6)"),
        ("pricing_rule", "VARCHAR"),
        ("grade_rate", "DECIMAL(8,6)"),
        ("cost_rate", "DECIMAL(8,6)"),
        ("expected_loss_rate", "DOUBLE"),
    ):
        con.execute(f"alter table limit_decisions add column if not exists {column} {kind}")


def _loan_offers(con: duckdb.DuckDBPyConnection) -> None:
    # the offer each loan was booked against, kept per night from now on; for the loans of
    # the last 30 evaluated days it is filled here from the decisions already kept, so the
    # first pricing_summary after the upgrade does not call them NO_OFFER (their rates are
    # null: those nights were evaluated before pricing)
    con.execute(
        """create table if not exists loan_offers (
            dt DATE not null, loan_id VARCHAR not null, customer_id VARCHAR not null,
            offer_dt DATE, risk_grade VARCHAR, offered_annual_rate DECIMAL(8,6))"""
    )
    if not (has_table(con, "limit_decisions") and has_table(con, "loans")):
        return
    # only the recent loans' customers' recent decisions: an as-of join over every night of a
    # 1M-customer book took 95 s and 20 GB
    con.execute(
        """insert into loan_offers
           with recent as (
               select dt, loan_id, customer_id from loans
               where dt > (select max(dt) - 30 from limit_decisions)
                 and loan_id not in (select loan_id from loan_offers)
           ),
           offers as (
               select dt, customer_id, risk_grade, offered_annual_rate from limit_decisions
               where dt >= (select max(dt) - 31 from limit_decisions)
                 and customer_id in (select customer_id from recent)
           )
           select l.dt, l.loan_id, l.customer_id, o.dt, o.risk_grade, o.offered_annual_rate
           from recent as l
           asof left join offers as o
               on o.customer_id = l.customer_id and o.dt < l.dt"""
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "record applied migrations in schema_migrations", _record_migrations),
    Migration(3, "limit_decisions gains the offered rate and its pricing", _pricing_columns),
    Migration(4, "loan_offers: the offer each loan was booked against", _loan_offers),
)
LATEST = MIGRATIONS[-1].version if MIGRATIONS else SCHEMA_VERSION


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The warehouse's schema version (0 for an empty database)."""
    if not has_table(con, "schema_info"):
        return 0
    return int(scalar(con, "select max(version) from schema_info") or 0)  # type: ignore[arg-type]


def migrate(
    con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[Migration]:
    """Bring the warehouse to the latest version; returns the migrations applied."""
    latest = migrations[-1].version if migrations else SCHEMA_VERSION
    current = schema_version(con)
    if current > latest:
        raise WarehouseTooNew(
            f"the warehouse has schema version {current}, newer than this creditflow's "
            f"{latest} ({code_version()}): run the creditflow that wrote it, or a newer one"
        )
    ensure_schema(con)  # the baseline (version 1) on a new warehouse; idempotent on any other
    applied = []
    for migration in migrations:
        if migration.version <= max(current, SCHEMA_VERSION):
            continue
        with transaction(con):
            migration.apply(con)
            con.execute("delete from schema_info")
            con.execute("insert into schema_info values ($v)", {"v": migration.version})
            if has_table(con, "schema_migrations"):
                con.execute(
                    "insert into schema_migrations values ($v, $n, now(), $code)",
                    {"v": migration.version, "n": migration.name, "code": code_version()},
                )
        applied.append(migration)
    return applied

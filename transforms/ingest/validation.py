"""Great Expectations, run inside DuckDB, on the staged delivery.

Rules GX has a native expectation for (not null, allowed values, ranges) are evaluated by
GX on the staged columns, independently of the router. Rules that need joins or windows
are evaluated once per row by the router (``chk_<extract>``) and GX counts and reports
them from there. Either way GX's counts must equal the router's (``check_agreement``).

A ``ValidationSession`` owns a named in-memory DuckDB database (``duckdb:///:memory:<name>``)
that creditflow and GX share through SQLAlchemy: creditflow stages the delivery into it
and ATTACHes the warehouse file; GX validates the staged tables where they are, without
copying millions of rows into pandas. The name matters: GX builds engines of its own
from the connection string, and only a named in-memory database is shared between them.

The shim. Through ``duckdb_engine``, every GX metric fails with ``IndexError`` (GX issues
#10738, #11579): duckdb_engine opens a real transaction, GX closes its SQLAlchemy
connection before reading the result, and the ROLLBACK that SQLAlchemy sends on close
throws the unread result away. GX's own escape hatch (listing the dialect in
``_PERSISTED_CONNECTION_DIALECTS``) keeps one transaction open for good, so GX stops
seeing tables created after its first query. ``_install_shim`` instead keeps one
connection per execution engine and commits before each query, so every query sees the
current data. ``tests/test_validation_shim.py`` fails when GX no longer needs it.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import sqlalchemy as sa
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine.sqlalchemy_execution_engine import (
    SqlAlchemyExecutionEngine,
)

from creditflow.contract import EXTRACTS_BY_NAME, Kind
from creditflow.transforms.ingest.rules import RULES, RULES_VERSION, Rule
from creditflow.warehouse import attach, use_business_time_zone

_ORIGINAL_EXECUTE = SqlAlchemyExecutionEngine.execute_query
_ORIGINAL_CLOSE = SqlAlchemyExecutionEngine.close


class ValidationDisagreement(RuntimeError):
    """GX and the row router counted different rows for a rule: a bug, never bad data."""


def _execute_query(self: SqlAlchemyExecutionEngine, query: Any) -> Any:
    if self.dialect_name != "duckdb":
        return _ORIGINAL_EXECUTE(self, query)
    conn = self.__dict__.get("_creditflow_conn")
    if conn is None or conn.closed:
        conn = self._creditflow_conn = self.engine.connect()
    if conn.in_transaction():
        conn.commit()  # a fresh snapshot: see tables and rows written since the last query
    return self._execute_query_with_recovery(conn, query)


def _close(self: SqlAlchemyExecutionEngine) -> None:
    conn = self.__dict__.pop("_creditflow_conn", None)
    if conn is not None:
        conn.close()
    _ORIGINAL_CLOSE(self)


def _install_shim() -> None:
    SqlAlchemyExecutionEngine.execute_query = _execute_query  # type: ignore[method-assign]
    SqlAlchemyExecutionEngine.close = _close  # type: ignore[method-assign]


def _remove_shim() -> None:
    """For the test that checks whether GX still needs the shim."""
    SqlAlchemyExecutionEngine.execute_query = _ORIGINAL_EXECUTE  # type: ignore[method-assign]
    SqlAlchemyExecutionEngine.close = _ORIGINAL_CLOSE  # type: ignore[method-assign]


_install_shim()


def _bound(value: object, kind: Kind) -> object:
    # GX compares DECIMAL columns correctly with Decimal bounds
    if value is None or kind not in (Kind.MONEY, Kind.RATE):
        return value
    return Decimal(str(value))


def expectation_for(rule: Rule) -> gxe.Expectation:
    """The GX form of a rule: native where GX has the same meaning, else the rule's SQL."""
    meta = {"rule_id": rule.id, "contract": rule.description, "rules_version": RULES_VERSION}
    if rule.native is not None:
        name, kwargs = rule.native
        kwargs = dict(kwargs)
        if name == "ExpectColumnValuesToBeBetween":
            kind = next(
                c.kind for c in EXTRACTS_BY_NAME[rule.extract].columns if c.name == kwargs["column"]
            )
            kwargs["min_value"] = _bound(kwargs.get("min_value"), kind)
            kwargs["max_value"] = _bound(kwargs.get("max_value"), kind)
        return getattr(gxe, name)(**kwargs, meta=meta)
    # Rules with joins and windows are evaluated once per row by the router into
    # chk_<extract> (one boolean column per rule); GX counts and reports them from there,
    # so a 5M-row file is not re-joined twice per rule. The predicate travels in meta.
    meta["sql"] = rule.violation
    query = f'select b.* from {{batch}} b semi join chk_{rule.extract} c on c._ord = b._ord and c."{rule.id}"'
    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=query, description=rule.description, meta=meta
    )


def suite_for(extract: str) -> gx.ExpectationSuite:
    rules = [r for r in RULES[extract] if r.phase != "staging"]
    return gx.ExpectationSuite(
        name=f"{extract}",
        expectations=[expectation_for(r) for r in rules],
        meta={"rules_version": RULES_VERSION, "contract": "docs/contract.md section 1"},
    )


SUITES_DIR = Path(__file__).resolve().parent / "expectations"


def suite_json(extract: str) -> str:
    """The suite as GX JSON, as kept in transforms/ingest/expectations/ for review in diffs."""
    return (
        json.dumps(suite_for(extract).to_json_dict(), indent=2, sort_keys=True, default=str) + "\n"
    )


def write_suites(folder: Path = SUITES_DIR) -> list[Path]:
    """Render every extract's suite to ``folder`` (``make suites``)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for extract in RULES:
        path = folder / f"{extract}.json"
        path.write_text(suite_json(extract), encoding="utf-8")
        written.append(path)
    return written


def _errors(info: dict) -> list[str]:
    """Exception messages GX recorded instead of raising (it reports metric errors as results)."""
    found = [info.get("exception_message", "")] if info.get("raised_exception") else []
    found += [
        v.get("exception_message", "")
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]
    return found


def _unexpected(result: Any) -> int:
    """Rows breaking the expectation: unexpected_count (native) or observed_value (SQL)."""
    errors = _errors(result.exception_info)
    if errors:
        raise RuntimeError(
            f"GX could not evaluate {result.expectation_config.meta.get('rule_id')}: {errors[0][:2000]}"
        )
    r = result.result
    # an empty batch reports None for both; the agreement check guards this reading
    value = r.get("unexpected_count") if "unexpected_count" in r else r.get("observed_value")
    return int(value or 0)


class ValidationSession:
    """The shared in-memory database, the attached warehouse, and a GX context over both."""

    def __init__(
        self, warehouse: Path, alias: str, wait_seconds: float = 0.0, data_docs: Path | None = None
    ) -> None:
        self.warehouse = warehouse
        self.alias = alias
        self.wait_seconds = wait_seconds
        self.data_docs = data_docs
        self.url = f"duckdb:///:memory:creditflow_{uuid.uuid4().hex}"

    def __enter__(self) -> ValidationSession:
        self.engine = sa.create_engine(
            self.url, poolclass=sa.pool.StaticPool, pool_reset_on_return=None
        )
        self._fairy = self.engine.raw_connection()
        self.con: duckdb.DuckDBPyConnection = self._fairy.driver_connection.duplicate()  # type: ignore[union-attr]
        use_business_time_zone(self.con)
        try:
            attach(self.con, self.warehouse, self.alias, wait_seconds=self.wait_seconds)
        except BaseException:
            self._teardown()
            raise
        # an ephemeral context announces its temporary docs folder at INFO: noise in every run
        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.datasource = self.context.data_sources.add_sql(
            name="staging", connection_string=self.url
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._teardown()

    def _teardown(self) -> None:
        # every handle must go, or the warehouse file stays locked in this process
        for close in (
            lambda: self.con.execute(f"detach {self.alias}"),
            self.con.close,
            self._fairy.close,
            self.engine.dispose,
            lambda: self.datasource.get_engine().dispose(),
            lambda: self.datasource.get_execution_engine().close(),
        ):
            try:
                close()
            except Exception:
                continue

    def validate(
        self, business_date: date, tables: dict[str, str]
    ) -> tuple[dict[str, dict[str, int]], str | None]:
        """Run each extract's suite on its staged table; returns unexpected rows per rule, and the docs index."""
        counts: dict[str, dict[str, int]] = {}
        for extract, table in tables.items():
            batch = self.datasource.add_table_asset(
                name=extract, table_name=table
            ).add_batch_definition_whole_table("all")
            suite = self.context.suites.add(suite_for(extract))
            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{extract}-{business_date.isoformat()}", data=batch, suite=suite
                )
            )
            outcome = definition.run(result_format="BASIC")
            counts[extract] = {
                r.expectation_config.meta["rule_id"]: _unexpected(r) for r in outcome.results
            }
        return counts, self._build_docs(business_date)

    def _build_docs(self, business_date: date) -> str | None:
        if self.data_docs is None:
            return None
        # GX requires an absolute folder; HOME defaults to the relative ./data
        site = (self.data_docs / f"dt={business_date.isoformat()}").resolve()
        self.context.add_data_docs_site(
            site_name="creditflow",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        self.context.build_data_docs(site_names=["creditflow"])
        return str(site / "index.html")


def check_agreement(
    gx_counts: dict[str, dict[str, int]], routed: dict[str, dict[str, int]]
) -> None:
    """GX and the router evaluate the same rules; any difference is a defect in creditflow."""
    diffs = [
        f"{rule}: GX {n}, router {routed.get(extract, {}).get(rule, 0)}"
        for extract, rules in gx_counts.items()
        for rule, n in rules.items()
        if n != routed.get(extract, {}).get(rule, 0)
    ]
    if diffs:
        raise ValidationDisagreement("validation and routing disagree: " + "; ".join(diffs))

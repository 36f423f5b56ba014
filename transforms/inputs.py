"""What a sharded stage is: its kernel, and the warehouse rows the kernel reads, declared once.

A stage's kernel computes over a DuckDB connection and plain arguments and returns rows. In
process it runs on the warehouse itself; on a cluster (creditflow.execution) each shard's
task runs it on an in-memory DuckDB that holds only the rows these declarations select, for
the customers or loans of that shard. So a kernel that reads a new table, or a longer window,
must say so here, beside its SQL; ``tests/transforms/test_stage_inputs.py`` holds every SQL
model of a stage to the tables its stage declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class Slice:
    """The rows of one warehouse table a stage needs: ``query`` selects them (with the
    stage's parameters, ``$d`` the business date) with the table's columns plus
    ``shard_key``, the text they shard by."""

    table: str
    query: str


@dataclass(frozen=True)
class DatedTable:
    """A table read by date: ``days`` back from the business date (inclusive of it), one
    date's rows selected by ``query`` (parameter ``$dt``) with a ``shard_key``. A cluster
    copies each date once and reuses it on later nights (execution.shard_store)."""

    table: str
    days: int
    query: str


@dataclass(frozen=True)
class Stage:
    """A unit of per-customer or per-loan work.

    ``setup(con)`` creates the tables the kernel reads on an empty connection; ``prepare(con,
    d, **params)`` (optional) brings derived tables up to date before the kernel and runs
    wherever the kernel's data is (the warehouse, and each shard); ``kernel(con, d,
    **params)`` returns the stage's rows. ``sharded_args`` names the parameters that hold
    per-customer values which a cluster splits by shard. Every callable is a module-level
    function, so the stage pickles to any worker.
    """

    name: str
    slices: tuple[Slice, ...]
    setup: Callable[[duckdb.DuckDBPyConnection], None]
    kernel: Callable[..., pa.Table]
    dated: tuple[DatedTable, ...] = ()
    prepare: Callable[..., None] | None = None
    sharded_args: tuple[str, ...] = field(default=())

    @property
    def tables(self) -> tuple[str, ...]:
        """Every warehouse table the stage reads."""
        return tuple(dict.fromkeys([s.table for s in self.slices] + [t.table for t in self.dated]))


class StageRunner(Protocol):
    """Runs a stage for a date and returns its rows: ``run_in_process``, or an executor's
    ``run`` (creditflow.execution), which the steps pass in."""

    def __call__(
        self, con: duckdb.DuckDBPyConnection, stage: Stage, d: date, **params: Any
    ) -> pa.Table: ...


def run_in_process(
    con: duckdb.DuckDBPyConnection, stage: Stage, d: date, **params: Any
) -> pa.Table:
    """Prepare and run the stage's kernel on ``con`` itself: the warehouse in process, or a
    shard's own DuckDB on a cluster."""
    if stage.prepare is not None:
        stage.prepare(con, d, **params)
    return stage.kernel(con, d, **params)

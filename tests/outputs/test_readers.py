"""What BI tools and the limit-serving system read: the published tables, their dictionary and
the BI catalog, checked against fourteen nights published by the real pipeline.

Every reader (DuckDB, Polars, pyarrow) must see the documented columns with the documented
types, one partition per business date and nothing else in the table folders; the data
dictionary must match the files (so it cannot drift from the code) and the rendered page must
match the dictionary; the catalog must be readable by another process while a run holds the
warehouse, and still work after the published folder moves.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from creditflow.flows.runs import lock_path, run_lock
from creditflow.outputs import dictionary
from creditflow.outputs.bi_catalog import CATALOG_FILE, STORAGE_VERSION, write_catalog
from creditflow.outputs.dictionary import TABLE_BY_NAME, TABLES
from creditflow.outputs.dictionary_page import DOC_PATH, render_markdown
from creditflow.outputs.verify import (  # one definition, shared with `creditflow verify`
    ARROW,
    OTHER_ENTRIES,
    POLARS,
    arrow_dataset,
    duckdb_read,
    verify,
)
from creditflow.policy.config import load_policy
from creditflow.policy.notice_types import NOTICE_TYPES, clock_minutes, in_quiet_hours
from creditflow.publish import PART_FILE, STAGING_DIR, publish_partition
from creditflow.settings import Settings
from tests.support.books import REPO

# the tests sharing the published_book fixture run on one worker, so it is built once
pytestmark = pytest.mark.xdist_group("published_book")


FIRST = date(2026, 3, 1)  # the published_book fixture: 14 nights from here
DATES = [FIRST + timedelta(days=i) for i in range(14)]
NAMES = [t.name for t in TABLES]


def row_counts(published: Path) -> dict[str, int]:
    con = duckdb.connect()
    try:
        return {
            t: con.sql(f"select count(*) from {duckdb_read(published, t)}").fetchall()[0][0]
            for t in NAMES
        }
    finally:
        con.close()


# --- the dictionary on its own (no published data needed) --------------------------------------


def test_docs_page_is_generated_from_the_dictionary() -> None:
    """docs/data_dictionary.md is render_markdown(): edit creditflow/outputs/dictionary.py, then regenerate."""
    assert DOC_PATH.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data_dictionary.md is stale: run "
        '.venv/bin/python -c "from creditflow.outputs.dictionary_page import write_markdown; write_markdown()"'
    )


def test_every_documented_type_is_a_duckdb_type_spelled_as_duckdb_prints_it() -> None:
    """A typo in a type would make the schema test fail confusingly; catch it here, and make sure
    the reader tests know how Polars and pyarrow spell each type."""
    con = duckdb.connect()
    for table in TABLES:
        names = table.column_names
        assert len(names) == len(set(names)), f"{table.name}: duplicate columns"
        assert names[-1] == "dt" and table.column("dt").type == "DATE", table.name
        assert "run_id" in names, table.name
        for c in table.columns:
            assert str(con.sql(f"select NULL::{c.type} as x").types[0]) == c.type, (table.name, c)
            assert c.type in ARROW and c.type in POLARS, c.type
            assert c.meaning.strip(), (table.name, c.name)
            if c.type == "DECIMAL(18,2)":
                assert c.unit == dictionary.CNY, (table.name, c.name)


def test_dictionary_lists_the_tables_and_columns_the_code_defines() -> None:
    """The column lists the publishing code keeps as constants, in the same order."""
    from creditflow.policy.decisions import PUBLISHED
    from creditflow.policy.notices import PUBLISHED_NOTICES
    from creditflow.steps.retrain import MODEL_RUN_COLUMNS
    from creditflow.transforms.reports import REPORTS

    assert set(NAMES) == {
        "limit_updates",
        *REPORTS,
        "pricing_summary",
        "customer_notices",
        "data_quality",
        "model_runs",
        "runs",
    }
    assert TABLE_BY_NAME["limit_updates"].column_names == [*PUBLISHED, "dt"]
    assert TABLE_BY_NAME["customer_notices"].column_names == [*PUBLISHED_NOTICES, "dt"]
    assert TABLE_BY_NAME["model_runs"].column_names == [*MODEL_RUN_COLUMNS, "run_id", "dt"]


def contract_minimum_columns() -> dict[str, set[str]]:
    """docs/contract.md section 3: the minimum columns of each published table."""
    path = REPO / "docs" / "contract.md"
    section = path.read_text(encoding="utf-8").split("## 3.")[1].split("\n## ")[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in TABLE_BY_NAME:
            # "action (NEW, INCREASE, ...)": the parenthesis describes the column, it is no column
            listed = re.sub(r"\([^)]*\)", "", cells[2])
            out[cells[0]] = {c.strip() for c in listed.split(",") if c.strip()}
    return out


def test_contract_columns_are_the_ones_flagged_in_the_dictionary() -> None:
    contract = contract_minimum_columns()
    assert len(contract) == 7, contract.keys()
    for table in TABLES:
        assert set(table.contract_columns) == contract.get(table.name, set()), table.name


# --- the published files ----------------------------------------------------------------------


def test_dictionary_matches_the_published_files(published_book: Settings) -> None:
    """Every column in the files is documented with the file's type, in the file's order; no
    documented column is missing; the contract's minimum columns are all there."""
    published = published_book.published_dir
    tables = {p.parent.parent.name for p in published.glob(f"*/dt=*/{PART_FILE}")}
    assert tables == set(NAMES), "a published table is missing from the dictionary, or vice versa"
    con = duckdb.connect()
    for table in TABLES:
        rel = con.sql(f"select * from {duckdb_read(published, table.name)}")
        in_files = [(n, str(t)) for n, t in zip(rel.columns, rel.types, strict=True)]
        documented = [(c.name, c.type) for c in table.columns]
        assert in_files == documented, table.name
    contract = contract_minimum_columns()
    for name, columns in contract.items():
        rel = con.sql(f"select * from {duckdb_read(published, name)}")
        assert columns <= set(rel.columns), (name, columns - set(rel.columns))


@pytest.mark.parametrize("table", NAMES)
def test_every_reader_sees_the_documented_types(published_book: Settings, table: str) -> None:
    """DuckDB, Polars and pyarrow agree on columns, types (money DECIMAL(18,2), dates DATE, ids
    text, reason_codes a list of strings) and rows; dt is a date from the path in all three."""
    published = published_book.published_dir
    doc = TABLE_BY_NAME[table]

    con = duckdb.connect()
    rel = con.sql(f"select * from {duckdb_read(published, table)}")
    assert [str(t) for t in rel.types] == [c.type for c in doc.columns]
    duck_rows = con.sql(f"select count(*) from {duckdb_read(published, table)}").fetchall()[0][0]
    con.close()

    # Polars 2.1 parses the hive value dt=YYYY-MM-DD as a Date (try_parse_hive_dates)
    lf = pl.scan_parquet(published / table, hive_partitioning=True)
    schema = lf.collect_schema()
    assert list(schema.items()) == [(c.name, POLARS[c.type]) for c in doc.columns]
    assert lf.select(pl.len()).collect().item() == duck_rows

    dataset = arrow_dataset(published, table)
    assert [(f.name, f.type) for f in dataset.schema] == [
        (c.name, ARROW[c.type]) for c in doc.columns
    ]
    assert dataset.count_rows() == duck_rows
    assert len(dataset.files) == len(DATES)

    if table == "limit_updates":
        # every customer evaluated every night; no model yet, so pd, score, grade are null
        got = con_rows(
            published,
            "select count(distinct dt), count(pd), count(score), count(risk_grade), "
            "count(model_version), min(new_limit) >= 0, bool_and(new_limit % 100 = 0) from {t}",
            table,
        )
        assert got == (14, 0, 0, 0, 0, True, True)
    if table in CHECK_ROWS:
        CHECK_ROWS[table](published_book)


def con_rows(published: Path, query: str, table: str) -> tuple[object, ...]:
    con = duckdb.connect()
    try:
        return tuple(con.sql(query.format(t=duckdb_read(published, table))).fetchall()[0])
    finally:
        con.close()


def both(published: Path, query: str) -> tuple[object, ...]:
    """One row of a query naming the tables as {limits} (limit_updates) and {<table name>}."""
    con = duckdb.connect()
    try:
        tables = {n: duckdb_read(published, n) for n in NAMES}
        return tuple(con.sql(query.format(limits=tables["limit_updates"], **tables)).fetchall()[0])
    finally:
        con.close()


def check_limit_updates_pricing(settings: Settings) -> None:
    """No model yet: every limit above 0 gets the starter rate by pricing.starter, a limit of 0
    gets neither rate nor rule."""
    starter = Decimal(str(load_policy(settings.policy_file).pricing.starter_rate))
    got = con_rows(
        settings.published_dir,
        """select count(*) filter (where new_limit > 0), count(offered_annual_rate),
                  count(*) filter (where pricing_rule = 'pricing.starter'),
                  count(*) filter (where new_limit = 0
                                   and (offered_annual_rate is not null or pricing_rule is not null)),
                  min(offered_annual_rate), max(offered_annual_rate) from {t}""",
        "limit_updates",
    )
    offered = got[0]
    assert isinstance(offered, int) and offered > 0
    assert got == (offered, offered, offered, 0, starter, starter)


def check_pricing_summary(settings: Settings) -> None:
    """Without a model every customer is STARTER: one row a night counting limit_updates, at
    the starter rate, with no pd, expected loss or margin; the other row is NO_OFFER loans."""
    policy = load_policy(settings.policy_file)
    got = both(
        settings.published_dir,
        """with l as (select dt, count(*) as n, count(*) filter (where new_limit > 0) as k,
                             avg(offered_annual_rate::DOUBLE) as rate
                      from {limits} group by dt)
           select count(distinct p.dt),
                  list(distinct p.risk_grade order by p.risk_grade),
                  count(*) filter (where p.risk_grade = 'STARTER' and p.customers = l.n
                                   and p.customers_offered = l.k
                                   and abs(p.mean_offered_rate - l.rate) < 1e-9),
                  count(p.mean_pd) + count(p.expected_loss_rate) + count(p.margin),
                  bool_or(p.negative_margin),
                  list(distinct p.funding_rate), list(distinct p.operating_rate),
                  count(*) filter (where p.risk_grade = 'NO_OFFER' and (p.customers > 0
                                   or p.mean_offered_rate is not null or p.loans_30d = 0)),
                  bool_and(p.loans_below_offer_30d + p.loans_above_cap_30d <= p.loans_30d)
           from {pricing_summary} as p join l using (dt)""",
    )
    cost = policy.pricing.cost
    assert cost is not None
    assert got[0] == len(DATES)
    assert set(got[1]) <= {"STARTER", "NO_OFFER"} and "STARTER" in got[1]  # type: ignore[operator]
    assert got[2:] == (len(DATES), 0, False, [cost.funding_rate], [cost.operating_rate], 0, True)


def check_customer_notices(settings: Settings) -> None:
    """Known types, unique stable ids, templates and send times on the next day outside the
    quiet hours; every LIMIT_* notice is the limit_updates row it announces, and on the first
    night (every customer's first evaluation) every NEW above 0, FREEZE and CLOSE has one, but
    for a closed customer who owes nothing."""
    policy = load_policy(settings.policy_file).notices
    types = ", ".join(f"'{t}'" for t in NOTICE_TYPES)
    got = both(
        settings.published_dir,
        f"""select count(*), count(distinct (dt, notice_id)),
                   bool_and(notice_type in ({types})),
                   bool_and(length(notice_id) = 32 and regexp_full_match(notice_id, '[0-9a-f]+')),
                   bool_and(template_id = notice_type || '.{policy.template_version}'),
                   bool_and(effective_from = dt + 1),
                   bool_and(timezone('Asia/Shanghai', send_after)::DATE = dt + 1),
                   list(distinct strftime(timezone('Asia/Shanghai', send_after), '%H:%M'))
            from {{customer_notices}}""",
    )
    assert got[0] and got[0] == got[1], got
    assert got[2:7] == (True, True, True, True, True), got
    quiet = clock_minutes(policy.quiet_start), clock_minutes(policy.quiet_end)
    assert not [t for t in got[7] if in_quiet_hours(clock_minutes(t), *quiet)]  # type: ignore[union-attr]
    unmatched = both(
        settings.published_dir,
        """select count(*) from {customer_notices} as n
           where starts_with(n.notice_type, 'LIMIT_') and not exists (
               select 1 from {limits} as l
               where l.dt = n.dt and l.customer_id = n.customer_id
                 and 'LIMIT_' || l.action = n.notice_type and l.new_limit = n.new_limit
                 and l.previous_limit is not distinct from n.previous_limit
                 and l.offered_annual_rate is not distinct from n.offered_annual_rate
                 and l.reason_codes = n.reasons and n.loan_id is null)""",
    )
    assert unmatched == (0,)
    first = both(
        settings.published_dir,
        f"""select (select count(*) from {{customer_notices}}
                    where dt = DATE '{FIRST}' and starts_with(notice_type, 'LIMIT_')),
                   (select count(*) from {{limits}} where dt = DATE '{FIRST}'
                    and (action in ('FREEZE', 'CLOSE') or (action = 'NEW' and new_limit > 0))
                    -- a closed customer who owes nothing is not notified
                    and not (policy_rule = 'eligibility.status_closed'
                             and outstanding_balance = 0))""",
    )
    assert first[0] == first[1] and first[0] > 0, first


# what each reader test checks beyond the types and the row counts
CHECK_ROWS = {
    "limit_updates": check_limit_updates_pricing,
    "pricing_summary": check_pricing_summary,
    "customer_notices": check_customer_notices,
}


def test_one_partition_per_date_and_no_stray_files(published_book: Settings) -> None:
    """Only dt=YYYY-MM-DD/part-0.parquet under each table, 14 dates each; staging is empty."""
    published = published_book.published_dir
    for table in NAMES:
        entries = sorted(p.relative_to(published / table) for p in (published / table).rglob("*"))
        dirs = [Path(f"dt={d.isoformat()}") for d in DATES]
        assert entries == sorted([*dirs, *(d / PART_FILE for d in dirs)]), table
    top = {p.name for p in published.iterdir()}
    assert top - set(NAMES) <= OTHER_ENTRIES, top - set(NAMES)
    assert not [p for p in published.iterdir() if p.is_file() and p.name != CATALOG_FILE]
    assert list((published / STAGING_DIR).iterdir()) == []

    # model_runs has a row every night here: without a champion a retrain is due every night
    # (and finds too little matured history); once there is one it trains weekly or on drift,
    # and its partitions thin out. runs has one attempt per night, all successful.
    assert con_rows(
        published,
        "select count(*), count(distinct dt), count(model_version), bool_or(promoted) from {t}",
        "model_runs",
    ) == (14, 14, 0, False)
    assert con_rows(
        published,
        "select count(*), count(distinct dt), max(attempt), bool_and(status = 'SUCCESS') from {t}",
        "runs",
    ) == (14, 14, 1, True)


# --- the BI catalog ---------------------------------------------------------------------------

# Run in a fresh interpreter: what a BI tool does, from another process. Prints JSON.
READER = r"""
import fcntl, json, sys
import duckdb

catalog, search_path, warehouse, lock = sys.argv[1:5]
config = {"file_search_path": search_path} if search_path else {}
out = {"counts": {}, "errors": {}}
con = duckdb.connect(catalog, read_only=True, config=config)
views = [r[0] for r in con.sql(
    "select view_name from duckdb_views() where not internal order by view_name").fetchall()]
for v in views:
    try:
        out["counts"][v] = con.sql(f'select count(*) from "{v}"').fetchall()[0][0]
    except duckdb.Error as exc:
        out["errors"][v] = str(exc)
out["tables"] = dict(con.sql("select table_name, description from tables").fetchall())
out["comments"] = [list(r) for r in con.sql(
    "select table_name, column_name, comment from duckdb_columns() "
    "where table_name in (select table_name from tables)").fetchall()]
con.close()
if warehouse:  # the warehouse itself is held by the run: a reader there would be refused
    try:
        duckdb.connect(warehouse, read_only=True).close()
        out["warehouse"] = "opened"
    except duckdb.Error as exc:
        out["warehouse"] = str(exc)
if lock:
    with open(lock, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            out["run_lock"] = "free"
        except BlockingIOError:
            out["run_lock"] = "held"
print(json.dumps(out))
"""


def read_catalog_elsewhere(
    catalog: Path,
    *,
    search_path: Path | None,
    cwd: Path,
    warehouse: Path | None = None,
    lock: Path | None = None,
) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            READER,
            str(catalog),
            str(search_path or ""),
            str(warehouse or ""),
            str(lock or ""),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bi_reads_the_catalog_while_a_run_holds_the_warehouse(
    published_book: Settings, tmp_path: Path
) -> None:
    """Another process opens the catalog read-only and counts every view while this one holds
    the run lock and a read-write connection to the warehouse."""
    published = published_book.published_dir
    expected = row_counts(published)
    path = write_catalog(published)
    assert path == published / CATALOG_FILE
    assert not [p for p in published.iterdir() if p.name.startswith(f".{CATALOG_FILE}")]

    with run_lock(published_book, "test"):
        warehouse = duckdb.connect(str(published_book.warehouse_path))
        try:
            assert warehouse.sql("select count(*) from runs").fetchall() == [(14,)]
            got = read_catalog_elsewhere(
                path,
                search_path=published,
                cwd=tmp_path,  # not the published folder: the setting is what finds the files
                warehouse=published_book.warehouse_path,
                lock=lock_path(published_book),
            )
        finally:
            warehouse.close()

    assert got["errors"] == {}
    assert got["counts"] == expected
    assert got["run_lock"] == "held" and "lock" in got["warehouse"].lower()
    assert got["tables"] == {t.name: t.description for t in TABLES}
    comments = {(t, c): text for t, c, text in got["comments"]}
    for table in TABLES:
        for c in table.columns:
            assert comments[(table.name, c.name)].startswith(c.meaning), (table.name, c.name)


def test_catalog_still_works_after_the_folder_moves(
    published_book: Settings, tmp_path: Path
) -> None:
    """Relative paths: a moved copy reads its own files, found through file_search_path or
    the working directory; without either, a clear error rather than another copy's data."""
    source = tmp_path / "before"
    shutil.copytree(published_book.published_dir, source)
    write_catalog(source)
    moved = source.rename(tmp_path / "moved")
    # a copy that differs from the original: proves the catalog reads the copy
    dropped = moved / "limit_updates" / f"dt={DATES[-1].isoformat()}"
    before = con_rows(moved, "select count(*) from {t}", "limit_updates")[0]
    shutil.rmtree(dropped)
    expected = row_counts(moved)
    assert 0 < expected["limit_updates"] < before

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_setting = read_catalog_elsewhere(moved / CATALOG_FILE, search_path=moved, cwd=elsewhere)
    assert by_setting["errors"] == {} and by_setting["counts"] == expected
    by_cwd = read_catalog_elsewhere(moved / CATALOG_FILE, search_path=None, cwd=moved)
    assert by_cwd["errors"] == {} and by_cwd["counts"] == expected
    lost = read_catalog_elsewhere(moved / CATALOG_FILE, search_path=None, cwd=elsewhere)
    assert set(lost["errors"]) == set(NAMES)
    assert all("No files found" in e for e in lost["errors"].values())

    # the SQL way, from any DuckDB session (what a BI tool's init SQL runs)
    con = duckdb.connect()
    try:
        con.execute(f"attach '{moved / CATALOG_FILE}' as credit (read_only)")
        con.execute(f"set file_search_path = '{moved}'")
        assert con.sql("select count(*) from credit.limit_updates").fetchall() == [
            (expected["limit_updates"],)
        ]
        tags = con.sql(
            "select tags from duckdb_databases() where database_name = 'credit'"
        ).fetchall()
        # readable by the DuckDB 1.x drivers BI tools bundle
        assert tags[0][0]["storage_version"].startswith(STORAGE_VERSION)
    finally:
        con.close()


def test_a_table_without_partitions_gets_an_empty_typed_view(tmp_path: Path) -> None:
    """Before a table's first partition its view is empty with the documented columns; once
    the catalog is rebuilt it reads the files. Nothing temporary is left behind."""
    published = tmp_path / "published"
    catalog = write_catalog(published)
    config = {"file_search_path": str(published)}
    con = duckdb.connect(str(catalog), read_only=True, config=config)
    try:
        for table in TABLES:
            rel = con.sql(f'select * from "{table.name}"')
            assert list(zip(rel.columns, map(str, rel.types), strict=True)) == [
                (c.name, c.type) for c in table.columns
            ]
            assert rel.fetchall() == []
        assert con.sql("select count(*) from tables").fetchall() == [(len(TABLES),)]
    finally:
        con.close()

    # a first partition of data_quality, then a rebuild: the view now reads it
    maker = duckdb.connect()
    publish_partition(
        maker.sql(
            """select 'loans' as extract, 'loans.parse' as "check", true as success,
                      10::BIGINT as rows_checked, 0::BIGINT as rows_failed,
                      0::BIGINT as rows_quarantined, 'r1' as run_id"""
        ),
        published,
        "data_quality",
        FIRST,
    )
    maker.close()
    write_catalog(published)
    con = duckdb.connect(str(catalog), read_only=True, config=config)
    try:
        assert con.sql('select extract, "check", dt from data_quality').fetchall() == [
            ("loans", "loans.parse", FIRST)
        ]
    finally:
        con.close()
    assert sorted(p.name for p in published.iterdir()) == sorted(
        [CATALOG_FILE, STAGING_DIR, "data_quality"]
    )


def test_verify_command_checks_a_published_area(published_book: Settings, tmp_path: Path) -> None:
    """`creditflow verify` passes on a real backfill and names a stray file and a wrong type."""
    checks, top = verify(published_book.published_dir)
    assert top == [] and all(c.problems == [] for c in checks)
    assert {c.table: c.partitions for c in checks}["limit_updates"] == len(DATES)
    broken = tmp_path / "published"
    shutil.copytree(published_book.published_dir, broken)
    (broken / "limit_updates" / f"dt={DATES[0]}" / "part-1.parquet").write_bytes(b"")
    day = broken / "vintage" / f"dt={DATES[1]}" / "part-0.parquet"
    rows = pq.read_table(day)  # money written as a float by some other tool
    at = rows.schema.get_field_index("principal")
    pq.write_table(rows.set_column(at, "principal", rows["principal"].cast(pa.float64())), day)
    checks, _ = verify(broken)
    problems = {c.table: c.problems for c in checks}
    assert any("stray entry" in p and "part-1.parquet" in p for p in problems["limit_updates"])
    assert problems["vintage"]

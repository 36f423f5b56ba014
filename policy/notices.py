"""Customer notices (消息通知): what the messaging system is asked to send after a night.

Repayment reminders, failed auto-debits and overdue notices come from the ledger; limit
notices from the night's decisions (``customer_notices.sql`` says which rows qualify). This
module adds when each may be sent (``send_after``, moved out of the quiet hours) and the
template, keeps the date's notices in the warehouse, and records, when a date is run again,
which notice ids the rerun added, withdrew or changed against what readers already had
(``notice_revisions``): a corrected redelivery never silently sends twice or leaves a
withdrawn reminder unexplained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import polars as pl
import pyarrow as pa

from creditflow.contract import BUSINESS_TZ
from creditflow.policy.config import LimitPolicy
from creditflow.policy.notice_types import NOTICE_TYPES, send_after
from creditflow.transforms.queries import sql
from creditflow.warehouse import transaction

NOTICES_DDL = (
    """create table if not exists customer_notices (
        dt DATE not null, notice_id VARCHAR not null, customer_id VARCHAR not null,
        notice_type VARCHAR not null, loan_id VARCHAR, installment_no INTEGER, due_date DATE,
        amount_due DECIMAL(18,2), dpd INTEGER, previous_limit DECIMAL(18,2),
        new_limit DECIMAL(18,2), offered_annual_rate DECIMAL(8,6), effective_from DATE not null,
        reasons VARCHAR[] not null, send_after TIMESTAMPTZ not null, template_id VARCHAR not null,
        run_id VARCHAR not null)""",
    # what each rerun of a date changed for readers: ADDED (new id), WITHDRAWN (id no longer
    # there) or CHANGED (same id, other content)
    """create table if not exists notice_revisions (
        dt DATE not null, run_id VARCHAR not null, notice_id VARCHAR not null,
        change VARCHAR not null, notice_type VARCHAR not null, customer_id VARCHAR not null)""",
    # every run that computed a date's notices (a date with none is still a date computed)
    "create table if not exists notice_nights (dt DATE not null, run_id VARCHAR not null)",
)

# the published columns, in order (dt lives in the path)
PUBLISHED_NOTICES = (
    "notice_id", "customer_id", "notice_type", "loan_id", "installment_no", "due_date",
    "amount_due", "dpd", "previous_limit", "new_limit", "offered_annual_rate", "effective_from",
    "reasons", "send_after", "template_id", "run_id",
)  # fmt: skip


@dataclass(frozen=True)
class NoticesResult:
    business_date: date
    notices: int
    by_type: dict[str, int]
    added: int  # ids a rerun of the date added (0 on the first run)
    withdrawn: int  # ids a rerun withdrew
    changed: int  # ids a rerun kept with other content (a corrected amount, say)
    first_run: bool  # no partition was published for the date before


def ensure_notices_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in NOTICES_DDL:
        con.execute(ddl)


def sending(policy: LimitPolicy, d: date) -> pl.DataFrame:
    """send_after and template_id of each notice type for the notices of business date ``d``:
    the configured time on the day after ``d``, moved out of the quiet hours."""
    n = policy.notices
    day = d + timedelta(days=1)
    return pl.DataFrame(
        {
            "notice_type": list(NOTICE_TYPES),
            "send_after": [
                send_after(day, n.send_at[t], n.quiet_start, n.quiet_end) for t in NOTICE_TYPES
            ],
            "template_id": [f"{t}.{n.template_version}" for t in NOTICE_TYPES],
        },
        schema_overrides={"send_after": pl.Datetime("us", BUSINESS_TZ)},
    )


def notice_rows(
    con: duckdb.DuckDBPyConnection, d: date, policy: LimitPolicy, run_id: str
) -> pl.DataFrame:
    """The notices of ``d`` in the published columns, ordered by notice_id. Reads the ledger's
    state and the decisions of ``d`` (run after both)."""
    n = policy.notices
    found = pl.from_arrow(
        con.sql(
            sql("customer_notices"),
            params={
                "d": d,
                "due_soon": list(n.due_soon_days),
                "overdue": list(n.overdue_dpd),
                "every_decision": n.limit_notices == "every_decision",
            },
        ).to_arrow_table()
    )
    assert isinstance(found, pl.DataFrame)
    rows = found.join(sending(policy, d), on="notice_type", how="left").with_columns(
        pl.lit(run_id).alias("run_id")
    )
    if rows["notice_id"].n_unique() != rows.height:
        dup = rows.filter(pl.col("notice_id").is_duplicated()).row(0, named=True)
        raise AssertionError(f"two notices share the id of {dup}")
    return rows.select(PUBLISHED_NOTICES).sort("notice_id")


# What a rerun changes for readers: tonight's rows (notice_frame) against the partition they
# have now (published_frame). A notice whose id stays but whose content moved (a corrected
# amount, another limit) is CHANGED, so a sender that de-duplicates by id resends it.
_CONTENT = [c for c in PUBLISHED_NOTICES if c not in ("notice_id", "run_id")]
_CHANGES = f"""
    select 'ADDED' as change, n.notice_id, n.notice_type, n.customer_id
    from notice_frame as n
    where n.notice_id not in (select notice_id from published_frame)
    union all
    select 'WITHDRAWN', o.notice_id, o.notice_type, o.customer_id
    from published_frame as o
    where o.notice_id not in (select notice_id from notice_frame)
    union all
    select 'CHANGED', n.notice_id, n.notice_type, n.customer_id
    from notice_frame as n
    join published_frame as o using (notice_id)
    where {" or ".join(f"n.{c} is distinct from o.{c}" for c in _CONTENT)}"""


def store_notices(
    con: duckdb.DuckDBPyConnection,
    d: date,
    rows: pl.DataFrame,
    run_id: str,
    published: pa.Table | None = None,
) -> NoticesResult:
    """Replace the date's notices with ``rows`` and, when readers already have a partition for
    the date (``published``: what they read now), record which ids tonight adds, withdraws
    and changes against it, in one transaction. Measured against what was published, not
    against the warehouse, a retry or a rerun after a failed night records the same changes
    (idempotent per run id), and a night that never published cannot hide one."""
    ensure_notices_schema(con)
    first_run = published is None
    baseline = published if published is not None else rows.head(0).to_arrow()
    con.register("notice_frame", rows.to_arrow())
    con.register("published_frame", baseline)
    try:
        with transaction(con):
            con.execute(
                """insert into notice_nights select $d, $r
                   where not exists (select 1 from notice_nights where dt = $d and run_id = $r)""",
                {"d": d, "r": run_id},
            )
            counts = dict(
                con.execute(f"select change, count(*) from ({_CHANGES}) group by all").fetchall()
            )
            con.execute(
                "delete from notice_revisions where dt = $d and run_id = $r", {"d": d, "r": run_id}
            )
            if not first_run:
                con.execute(
                    f"""insert into notice_revisions
                        select $d, $r, notice_id, change, notice_type, customer_id from ({_CHANGES})""",
                    {"d": d, "r": run_id},
                )
            con.execute("delete from customer_notices where dt = $d", {"d": d})
            columns = ", ".join(PUBLISHED_NOTICES)
            con.execute(
                f"insert into customer_notices (dt, {columns}) select $d, {columns} from notice_frame",
                {"d": d},
            )
    finally:
        con.unregister("notice_frame")
        con.unregister("published_frame")
    by_type = dict(rows.group_by("notice_type").len().iter_rows())
    return NoticesResult(
        business_date=d,
        notices=rows.height,
        by_type={t: int(by_type.get(t, 0)) for t in NOTICE_TYPES},
        added=0 if first_run else int(counts.get("ADDED", 0)),
        withdrawn=0 if first_run else int(counts.get("WITHDRAWN", 0)),
        changed=0 if first_run else int(counts.get("CHANGED", 0)),
        first_run=first_run,
    )


def published_notices(con: duckdb.DuckDBPyConnection, d: date) -> duckdb.DuckDBPyRelation:
    """The published partition of ``d``, from the stored notices."""
    return con.sql(
        f"select {', '.join(PUBLISHED_NOTICES)} from customer_notices "
        "where dt = $d order by notice_id",
        params={"d": d},
    )

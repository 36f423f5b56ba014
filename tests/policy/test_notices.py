"""Customer notices and the pricing summary over months of a synthetic book: reminders agree
row for row with an oracle that reads only the landing files, overdue notices with
loan_delinquency, limit notices with the night's decisions; ids are unique and stable, a
rerun records what it added and withdrew; the pricing summary equals a recomputation."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from creditflow.policy.config import LimitPolicy, load_policy
from creditflow.policy.decisions import evaluate_limits
from creditflow.policy.notice_queries import notice_revisions
from creditflow.policy.notice_types import clock_minutes, in_quiet_hours
from creditflow.policy.notices import notice_rows, store_notices
from creditflow.policy.pricing import pricing_summary
from creditflow.transforms.reports import report
from creditflow.upstream.generate import generate
from creditflow.upstream.simulation import GeneratorConfig
from tests.support.oracle import load_as_warehouse, load_landing, reminders, run_ledger

BOOK = GeneratorConfig(customers=1200, days=110, start=date(2025, 10, 1), seed=21)
END = BOOK.start + timedelta(days=BOOK.days - 1)
# nights checked: late enough for 30+ dpd, instalments falling due and reversals
NIGHTS = [END - timedelta(days=k) for k in (20, 9, 1, 0)]
POLICY = load_policy()
# one worker runs the module in order: the last test changes the shared book
pytestmark = pytest.mark.xdist_group("notices")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(BOOK, tmp_path_factory.mktemp("notices") / "landing").landing


@pytest.fixture(scope="module")
def book(landing: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse after the ledger's nights, limits decided on the checked nights and the
    night before each (the starter rule: no model), notices stored for the checked nights."""
    con = load_as_warehouse(landing)
    run_ledger(con, BOOK.start, NIGHTS[0] - timedelta(days=1))
    evaluate_limits(con, NIGHTS[0] - timedelta(days=1), POLICY, None, "r-before")
    day = NIGHTS[0]
    while day <= END:
        run_ledger(con, day, day)
        evaluate_limits(con, day, POLICY, None, f"r-{day}")
        if day in NIGHTS:
            store_notices(con, day, notice_rows(con, day, POLICY, f"r-{day}"), f"r-{day}")
        day += timedelta(days=1)
    return con


def notices(con: duckdb.DuckDBPyConnection, d: date, kinds: tuple[str, ...]) -> pl.DataFrame:
    out = pl.from_arrow(
        con.sql(
            "select * from customer_notices where dt = $d and list_contains($k, notice_type)",
            params={"d": d, "k": list(kinds)},
        ).to_arrow_table()
    )
    assert isinstance(out, pl.DataFrame)
    return out


@pytest.mark.parametrize("night", NIGHTS)
def test_reminders_agree_row_for_row_with_the_landing_files(
    book: duckdb.DuckDBPyConnection, landing: Path, night: date
) -> None:
    kinds = ("DUE_SOON", "DUE_TODAY", "AUTO_DEBIT_FAILED")
    ours = notices(book, night, kinds)
    key = ("notice_type", "customer_id", "loan_id", "installment_no", "due_date", "amount_due")
    got = {tuple(r[k] for k in key) for r in ours.iter_rows(named=True)}
    assert len(got) == ours.height  # exactly one notice per instalment (or loan, for debits)
    assert got == reminders(load_landing(landing), night, POLICY.notices.due_soon_days)
    assert {"DUE_SOON", "DUE_TODAY"} <= set(ours["notice_type"])


def test_paid_up_instalments_due_soon_get_no_reminder(book: duckdb.DuckDBPyConnection) -> None:
    """A prepaid or fully paid instalment in the reminder window gets none (and the book has
    such instalments, so the comparison above covers them)."""
    offsets = [k + 1 for k in POLICY.notices.due_soon_days] + [1]
    paid_up = book.execute(
        """select count(*), count(n.notice_id)
           from loan_daily as l
           join schedule as s using (loan_id)
           left join customer_notices as n
               on n.dt = l.dt and n.loan_id = s.loan_id and n.installment_no = s.installment_no
           where list_contains($nights, l.dt)
             and list_contains($offsets, s.due_date - l.dt)
             and l.paid_total >= s.cum_before + s.principal_due + s.interest_due""",
        {"nights": NIGHTS, "offsets": offsets},
    ).fetchall()[0]
    assert paid_up[0] > 0 and paid_up[1] == 0


def test_the_book_has_failed_debits_to_check(book: duckdb.DuckDBPyConnection) -> None:
    """The reminder comparison covers AUTO_DEBIT_FAILED too (not an empty set on both sides)."""
    found = book.execute(
        "select count(*) from customer_notices where notice_type = 'AUTO_DEBIT_FAILED'"
    ).fetchall()[0][0]
    assert found > 0


@pytest.mark.parametrize("night", NIGHTS)
def test_every_loan_at_an_overdue_step_gets_one_overdue_notice(
    book: duckdb.DuckDBPyConnection, night: date
) -> None:
    published = pl.from_arrow(report(book, "loan_delinquency", night, "r").to_arrow_table())
    assert isinstance(published, pl.DataFrame)
    steps = published.filter(pl.col("dpd").is_in(list(POLICY.notices.overdue_dpd)))
    ours = notices(book, night, ("OVERDUE",))
    assert ours.height == steps.height
    joined = steps.join(ours, on="loan_id", how="left")
    assert joined["notice_id"].null_count() == 0
    assert (joined["dpd"] == joined["dpd_right"]).all()
    assert (joined["overdue_amount"] == joined["amount_due"]).all()
    expected_due = joined.select(pl.lit(night) - pl.duration(days=pl.col("dpd")))
    assert (joined["due_date"] == expected_due.to_series()).all()


def _limit_notices(con: duckdb.DuckDBPyConnection, d: date, policy: LimitPolicy) -> pl.DataFrame:
    rows = notice_rows(con, d, policy, "r")
    return rows.filter(pl.col("notice_type").str.starts_with("LIMIT_"))


@pytest.mark.parametrize("mode", ["change", "every_decision"])
def test_limit_notices_follow_the_decisions(book: duckdb.DuckDBPyConnection, mode: str) -> None:
    """NEW above 0, INCREASE and DECREASE always; FREEZE and CLOSE when the state starts (or
    on every decision); UNCHANGED never; same limits, date and reasons as the decision."""
    policy = POLICY.model_copy(
        update={"notices": POLICY.notices.model_copy(update={"limit_notices": mode})}
    )
    adverse_seen = repeats_seen = 0
    by_change = mode == "change"
    for night in NIGHTS:
        decided = pl.from_arrow(
            book.sql(
                """select t.*, b.action as before_action, b.policy_rule as before_rule,
                          c.status as status_now, l.owed
                   from limit_decisions t
                   left join limit_decisions b on b.customer_id = t.customer_id
                        and b.dt = (select max(dt) from limit_decisions where dt < $d)
                   left join customer_versions c on c.customer_id = t.customer_id
                        and c.valid_from <= $d and (c.valid_to is null or c.valid_to > $d)
                   left join (select customer_id, sum(total_due - paid_total) filter (where total_due > paid_total) as owed
                              from loan_daily where dt = $d group by all) l on l.customer_id = t.customer_id
                   where t.dt = $d""",
                params={"d": night},
            ).to_arrow_table()
        )
        assert isinstance(decided, pl.DataFrame)
        starts = (
            pl.col("before_action").is_null()
            | (pl.col("previous_limit").fill_null(0) > 0)
            | (pl.col("before_action") != pl.col("action"))
            | (pl.col("before_rule") != pl.col("policy_rule"))
        )
        quiet = (pl.col("status_now") == "CLOSED") & pl.col("owed").is_null()
        wanted = decided.filter(
            ~quiet
            & (
                pl.col("action").is_in(["INCREASE", "DECREASE"])
                | ((pl.col("action") == "NEW") & (pl.col("new_limit") > 0))
                | (
                    pl.col("action").is_in(["FREEZE", "CLOSE"])
                    & (starts if by_change else pl.lit(True))
                )
            )
        )
        ours = _limit_notices(book, night, policy)
        assert ours.height == wanted.height and ours["customer_id"].n_unique() == ours.height
        joined = wanted.join(ours, on="customer_id", how="left")
        assert (joined["notice_type"] == "LIMIT_" + joined["action"]).all()
        assert (joined["new_limit"] == joined["new_limit_right"]).all()
        assert (joined["effective_from"] == joined["effective_from_right"]).all()
        assert (joined["reasons"] == joined["reason_codes"]).all()
        adverse = joined.filter(pl.col("action").is_in(["DECREASE", "FREEZE", "CLOSE"]))
        assert (adverse["reasons"].list.len() > 0).all()
        adverse_seen += adverse.height
        # a frozen customer who stays frozen is not told again every night, unless asked for
        repeats = decided.filter(pl.col("action").is_in(["FREEZE", "CLOSE"]) & ~starts & ~quiet)
        repeats_seen += repeats.height
        if mode == "change":
            assert not set(repeats["customer_id"]) & set(ours["customer_id"])
    assert adverse_seen > 0 and repeats_seen > 0  # both cases occur in the book


def test_no_notice_for_a_closed_customer_owing_nothing_nor_in_quiet_hours(
    book: duckdb.DuckDBPyConnection,
) -> None:
    closed_idle = book.execute(
        """select count(*) from customer_notices n
           join customer_versions c on c.customer_id = n.customer_id
                and c.valid_from <= n.dt and (c.valid_to is null or c.valid_to > n.dt)
           where c.status = 'CLOSED' and not exists (
               select 1 from loan_daily l where l.dt = n.dt and l.customer_id = n.customer_id
               and l.total_due > l.paid_total)"""
    ).fetchall()[0][0]
    assert closed_idle == 0
    start, end = (clock_minutes(POLICY.notices.quiet_start), clock_minutes(POLICY.notices.quiet_end))  # fmt: skip
    times = book.execute(
        "select distinct strftime(timezone('Asia/Shanghai', send_after), '%H:%M') from customer_notices"
    ).fetchall()
    assert times and not any(in_quiet_hours(clock_minutes(t), start, end) for (t,) in times)


def test_pricing_summary_equals_a_recomputation(book: duckdb.DuckDBPyConnection, landing: Path) -> None:  # fmt: skip
    """Tonight's offers by grade from the decisions, and the loans of the last 30 days (from
    the landing files) against the offer of the latest evaluation before their origination."""
    night = END
    got = {r["risk_grade"]: r for r in pricing_summary(book, night, POLICY, "r").pl().to_dicts()}
    decided = book.sql("select * from limit_decisions where dt = $d", params={"d": night}).pl()
    offered = decided.filter(pl.col("new_limit") > 0)
    assert got["STARTER"]["customers"] == decided.height  # no model: everyone is STARTER
    assert got["STARTER"]["customers_offered"] == offered.height
    assert got["STARTER"]["mean_offered_rate"] == pytest.approx(0.18)
    assert got["STARTER"]["mean_pd"] is None and not got["STARTER"]["negative_margin"]
    con = load_landing(landing)
    loans = con.sql(
        """select customer_id, cast(timezone('Asia/Shanghai', originated_at) as date) as booked,
                  principal, annual_rate from loans where dt > $d::DATE - 30 and dt <= $d""",
        params={"d": night},
    ).pl()
    history = book.sql(
        "select customer_id, dt, offered_annual_rate from limit_decisions where dt < $d",
        params={"d": night},
    ).pl()
    groups: dict[str, list[dict]] = {"STARTER": [], "NO_OFFER": []}
    for loan in loans.to_dicts():
        before = history.filter(
            (pl.col("customer_id") == loan["customer_id"]) & (pl.col("dt") < loan["booked"])
        ).sort("dt")
        offer = before["offered_annual_rate"][-1] if before.height else None
        groups["STARTER" if before.height else "NO_OFFER"].append(loan | {"offer": offer})
    assert all(groups.values()), "the book should have loans with and without an offer"
    for grade, rows in groups.items():
        principal = sum(r["principal"] for r in rows)
        realised = sum(r["principal"] * r["annual_rate"] for r in rows) / principal
        assert got[grade]["loans_30d"] == len(rows)
        assert got[grade]["principal_30d"] == principal
        assert got[grade]["realised_rate_30d"] == pytest.approx(float(realised))
        below = sum(1 for r in rows if r["offer"] is not None and r["annual_rate"] < r["offer"])
        assert got[grade]["loans_below_offer_30d"] == below
        assert got[grade]["loans_above_cap_30d"] == sum(1 for r in rows if r["annual_rate"] > 0.24)


def test_ids_are_unique_stable_and_a_rerun_records_what_it_changed(
    book: duckdb.DuckDBPyConnection,
) -> None:
    night = NIGHTS[-1]
    assert book.execute(
        "select count(*) = count(distinct notice_id) from customer_notices"
    ).fetchall()[0][0]
    before = notices(book, night, ("DUE_SOON", "DUE_TODAY", "OVERDUE", "LIMIT_NEW", "LIMIT_INCREASE", "LIMIT_DECREASE", "LIMIT_FREEZE", "LIMIT_CLOSE", "AUTO_DEBIT_FAILED"))  # fmt: skip
    again = notice_rows(book, night, POLICY, f"r-{night}")
    assert again.drop("run_id").equals(
        before.drop("dt", "run_id").select(again.drop("run_id").columns)
    )
    # a corrected redelivery: one repayment more, one failed debit withdrawn
    due = before.filter(pl.col("notice_type") == "DUE_TODAY").row(0, named=True)
    failed = before.filter(pl.col("notice_type") == "AUTO_DEBIT_FAILED").row(0, named=True)
    # (this changes the module's book: the last test of the module, run in order on one worker)
    book.execute(
        "update loan_daily set paid_total = paid_total + $a where dt = $d and loan_id = $l",
        {"a": due["amount_due"] + 1000, "d": night, "l": due["loan_id"]},
    )
    book.execute(
        """update transactions set status = 'SUCCESS', txn_type = 'REPAYMENT', channel = 'APP'
           where dt = $d and loan_id = $l and status = 'FAILED'""",
        {"d": night, "l": failed["loan_id"]},
    )
    book.execute(
        """delete from transactions where dt = $d and txn_type = 'REVERSAL' and reverses_txn_id in
           (select txn_id from repayments where loan_id = $l)""",
        {"d": night, "l": failed["loan_id"]},
    )
    published = before.drop("dt").select(again.columns).to_arrow()  # what readers have now
    fixed = notice_rows(book, night, POLICY, "r-fix")
    result = store_notices(book, night, fixed, "r-fix", published)
    # a retry of the same run (the task retries on IO errors) records the same changes again
    assert store_notices(book, night, fixed, "r-fix", published) == result
    changed = notice_revisions(book, night)
    assert not result.first_run and result.withdrawn >= 2
    assert sum(c["run_id"] == "r-fix" for c in changed) == result.withdrawn + result.added + result.changed  # fmt: skip
    withdrawn = {
        c["notice_id"] for c in changed if c["run_id"] == "r-fix" and c["change"] == "WITHDRAWN"
    }
    assert {due["notice_id"], failed["notice_id"]} <= withdrawn

"""The synthetic upstream delivers exactly what docs/contract.md section 1 describes."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from creditflow.contract import EXTRACTS, EXTRACTS_BY_NAME, MANIFEST_NAME
from creditflow.upstream.generate import GenerationResult
from tests.support.books import delivery_dirs
from tests.support.oracle import load_landing


@pytest.fixture(scope="module")
def con(small_book: GenerationResult) -> duckdb.DuckDBPyConnection:
    """Every delivery read back with strict parsing into contract-typed tables."""
    return load_landing(small_book.landing)


def test_every_day_has_all_five_extracts_and_a_manifest(small_book: GenerationResult) -> None:
    """One dt= folder per day, each with the five extracts and the manifest, nothing else."""
    dirs = delivery_dirs(small_book.landing)
    assert len(dirs) == small_book.days
    expected = {e.file_name("csv") for e in EXTRACTS} | {MANIFEST_NAME}
    for d in dirs:
        assert {p.name for p in d.iterdir()} == expected, d


def test_headers_match_the_contract_column_order(small_book: GenerationResult) -> None:
    """The header row names exactly the contract's columns, in its order."""
    first = delivery_dirs(small_book.landing)[0]
    for e in EXTRACTS:
        with gzip.open(first / e.file_name("csv"), "rt", encoding="utf-8") as f:
            assert f.readline().rstrip("\n").split(",") == e.column_names


def test_manifest_counts_and_checksums_match_the_files(small_book: GenerationResult) -> None:
    """Every manifest names the business date, each file's data rows and its sha256."""
    for d in delivery_dirs(small_book.landing):
        manifest = json.loads((d / MANIFEST_NAME).read_text())
        assert manifest["business_date"] == d.name.removeprefix("dt=")
        assert manifest["generated_at"].startswith(manifest["business_date"][:4])
        assert set(manifest["files"]) == {e.file_name("csv") for e in EXTRACTS}
        for name, meta in manifest["files"].items():
            payload = (d / name).read_bytes()
            assert meta["sha256"] == hashlib.sha256(payload).hexdigest(), (d, name)
            lines = gzip.decompress(payload).decode().splitlines()
            assert meta["rows"] == len(lines) - 1, (d, name)


def test_manifest_is_written_last(small_book: GenerationResult) -> None:
    """The manifest is the newest file in each folder: a reader seeing it sees a complete day."""
    for d in delivery_dirs(small_book.landing):
        manifest_time = (d / MANIFEST_NAME).stat().st_mtime_ns
        assert all(p.stat().st_mtime_ns <= manifest_time for p in d.iterdir())


def test_days_without_loans_still_deliver_header_only_files(tmp_path: Path) -> None:
    """An extract with no rows that day is still delivered, header only."""
    from datetime import date

    from creditflow.upstream.generate import generate
    from creditflow.upstream.simulation import GeneratorConfig

    result = generate(
        GeneratorConfig(customers=5, days=2, start=date(2026, 3, 1), seed=1), tmp_path / "l"
    )
    folder = delivery_dirs(result.landing)[0]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    # five customers and one day: nobody can have borrowed yet (registration is before lending)
    assert manifest["files"]["loans.csv.gz"]["rows"] == 0
    with gzip.open(folder / "loans.csv.gz", "rt") as f:
        assert f.read() == ",".join(EXTRACTS_BY_NAME["loans"].column_names) + "\n"


# Each query counts rows that break one rule of the contract; every count must be zero.
RULES = {
    "customers: customer_id not null and unique per file": """
        select count(*) from (select dt, customer_id, count(*) n from customers group by all)
        where customer_id is null or n > 1""",
    "customers: registered_on <= business date": "select count(*) from customers where registered_on > dt",
    "customers: birth_year in 1900..business year": """
        select count(*) from customers where birth_year < 1900 or birth_year > year(dt)""",
    "customers: gender M/F/U": "select count(*) from customers where gender not in ('M', 'F', 'U')",
    "customers: city_tier 1-5": "select count(*) from customers where city_tier not between 1 and 5",
    "customers: occupation allowed": """select count(*) from customers where occupation not in
        ('SALARIED','SELF_EMPLOYED','MERCHANT','FREELANCER','STUDENT','RETIRED','OTHER')""",
    "customers: kyc_level 1-3": "select count(*) from customers where kyc_level not between 1 and 3",
    "customers: income >= 0": "select count(*) from customers where declared_monthly_income < 0",
    "customers: status allowed": "select count(*) from customers where status not in ('ACTIVE','BLOCKED','CLOSED')",
    "customers: required fields present": """select count(*) from customers where registered_on is null
        or birth_year is null or gender is null or city_tier is null or occupation is null
        or kyc_level is null or status is null or updated_at is null""",
    "customers: updated_at on or before the business date": """
        select count(*) from customers where cast(updated_at as date) > dt""",
    "behaviour: known customer": """
        select count(*) from behaviour b where not exists (
            select 1 from customers c where c.customer_id = b.customer_id and c.dt <= b.dt)""",
    "behaviour: business_date = folder date": "select count(*) from behaviour where business_date <> dt",
    "behaviour: (customer_id, business_date) unique": """
        select count(*) from (select customer_id, business_date, count(*) n from behaviour group by all) where n > 1""",
    "behaviour: counts and amounts >= 0": """select count(*) from behaviour where app_sessions < 0
        or app_minutes < 0 or payments_count < 0 or payments_amount < 0 or transfers_in_amount < 0
        or transfers_out_amount < 0 or red_packets_sent < 0 or red_packets_received < 0
        or contacts_added < 0 or wallet_balance < 0""",
    "behaviour: night share in 0..1": "select count(*) from behaviour where night_activity_share not between 0 and 1",
    "loans: loan_id unique across dates": """
        select count(*) from (select loan_id, count(*) n from loans group by all) where n > 1 or loan_id is null""",
    "loans: known customer": """select count(*) from loans l where not exists (
        select 1 from customers c where c.customer_id = l.customer_id and c.dt <= l.dt)""",
    "loans: originated on the business date": "select count(*) from loans where cast(originated_at as date) <> dt",
    "loans: product allowed": "select count(*) from loans where product not in ('CASH_LOAN', 'MERCHANT_LOAN')",
    "loans: principal > 0": "select count(*) from loans where principal <= 0",
    "loans: term 1-36": "select count(*) from loans where term_months not between 1 and 36",
    "loans: 0 < rate <= 0.24": "select count(*) from loans where annual_rate <= 0 or annual_rate > 0.24",
    "loans: method allowed": """select count(*) from loans where repayment_method not in
        ('EQUAL_INSTALLMENT', 'BULLET')""",
    "installments: loan in this or an earlier delivery": """select count(*) from installments i
        where not exists (select 1 from loans l where l.loan_id = i.loan_id and l.dt <= i.dt)""",
    "installments: numbered 1..term, unique per loan": """
        select count(*) from (
            select i.loan_id, count(*) n, count(distinct installment_no) k, min(installment_no) lo,
                   max(installment_no) hi, any_value(l.term_months) term
            from installments i join loans l using (loan_id) group by all)
        where n <> term or k <> term or lo <> 1 or hi <> term""",
    "installments: due after origination, increasing": """
        select count(*) from (
            select i.due_date, cast(l.originated_at as date) o,
                   lag(i.due_date) over (partition by i.loan_id order by installment_no) prev
            from installments i join loans l using (loan_id))
        where due_date <= o or due_date <= prev""",
    "installments: amounts >= 0": "select count(*) from installments where principal_due < 0 or interest_due < 0",
    "installments: principal sums to the loan's": """
        select count(*) from (select loan_id, sum(principal_due) s from installments group by all)
        join loans using (loan_id) where s <> principal""",
    "transactions: txn_id unique across dates": """
        select count(*) from (select txn_id, count(*) n from transactions group by all) where n > 1 or txn_id is null""",
    "transactions: known customer": """select count(*) from transactions t where not exists (
        select 1 from customers c where c.customer_id = t.customer_id and c.dt <= t.dt)""",
    "transactions: loan_id exactly on DRAWDOWN and REPAYMENT": """select count(*) from transactions
        where (txn_type in ('DRAWDOWN', 'REPAYMENT')) <> (loan_id is not null)""",
    "transactions: loan_id names a delivered loan": """select count(*) from transactions t
        where loan_id is not null and not exists (select 1 from loans l where l.loan_id = t.loan_id and l.dt <= t.dt)""",
    "transactions: date <= business date, at most 3 days late": """select count(*) from transactions
        where cast(txn_ts as date) > dt or cast(txn_ts as date) < dt - 3""",
    "transactions: type allowed": """select count(*) from transactions where txn_type not in
        ('DRAWDOWN','REPAYMENT','PURCHASE','TRANSFER_IN','TRANSFER_OUT','FEE','REFUND','REVERSAL')""",
    "transactions: amount > 0": "select count(*) from transactions where amount <= 0",
    "transactions: currency CNY": "select count(*) from transactions where currency <> 'CNY'",
    "transactions: channel allowed": """select count(*) from transactions where channel not in
        ('APP','MINI_PROGRAM','AUTO_DEBIT','BANK_CARD')""",
    "transactions: status allowed": "select count(*) from transactions where status not in ('SUCCESS','FAILED')",
    "transactions: reverses_txn_id exactly on REVERSAL": """select count(*) from transactions
        where (txn_type = 'REVERSAL') <> (reverses_txn_id is not null)""",
    "transactions: a REVERSAL undoes an earlier successful auto-debit REPAYMENT of its customer": """
        select count(*) from transactions v left join transactions r on r.txn_id = v.reverses_txn_id
        where v.txn_type = 'REVERSAL' and (r.txn_id is null or r.txn_type <> 'REPAYMENT'
            or r.status <> 'SUCCESS' or r.channel <> 'AUTO_DEBIT' or r.customer_id <> v.customer_id
            or r.amount <> v.amount or r.txn_ts >= v.txn_ts)""",
    "transactions: a repayment is reversed at most once": """select count(*) from (
        select reverses_txn_id, count(*) n from transactions where txn_type = 'REVERSAL' group by all) where n > 1""",
}


@pytest.mark.parametrize("rule", list(RULES))
def test_contract_rule_holds(con: duckdb.DuckDBPyConnection, rule: str) -> None:
    """No delivered row breaks the rule."""
    result = con.execute(RULES[rule]).fetchone()
    assert result is not None
    assert result[0] == 0, rule


def test_every_kind_of_event_occurs(con: duckdb.DuckDBPyConnection) -> None:
    """The book exercises every transaction type, channel and status, late rows and both products."""
    types = {r[0] for r in con.execute("select distinct txn_type from transactions").fetchall()}
    assert types == {
        "DRAWDOWN",
        "REPAYMENT",
        "PURCHASE",
        "TRANSFER_IN",
        "TRANSFER_OUT",
        "FEE",
        "REFUND",
        "REVERSAL",
    }
    channels = {r[0] for r in con.execute("select distinct channel from transactions").fetchall()}
    assert channels == {"APP", "MINI_PROGRAM", "AUTO_DEBIT", "BANK_CARD"}
    late = con.execute(
        "select count(*) from transactions where cast(txn_ts as date) < dt"
    ).fetchone()
    failed = con.execute("select count(*) from transactions where status = 'FAILED'").fetchone()
    assert late is not None and late[0] > 0
    assert failed is not None and failed[0] > 0
    methods = {r[0] for r in con.execute("select distinct repayment_method from loans").fetchall()}
    assert methods == {"EQUAL_INSTALLMENT", "BULLET"}
    products = {r[0] for r in con.execute("select distinct product from loans").fetchall()}
    assert products == {"CASH_LOAN", "MERCHANT_LOAN"}


def test_customers_register_over_time_and_change(con: duckdb.DuckDBPyConnection) -> None:
    """A starting base on day one, a daily trickle after, and upserts of existing customers."""
    first_day = con.execute("select min(dt) from customers").fetchone()
    assert first_day is not None
    per_day = con.execute(
        """select count(*) filter (where registered_on = dt) new, count(*) filter (where registered_on < dt) changed
           from customers where dt > $first""",
        {"first": first_day[0]},
    ).fetchone()
    assert per_day is not None
    new, changed = per_day
    assert new > 0 and changed > 0
    repeated = con.execute(
        "select count(*) from (select customer_id from customers group by all having count(*) > 1)"
    ).fetchone()
    assert repeated is not None and repeated[0] > 0


def test_attribute_distributions_are_plausible(con: duckdb.DuckDBPyConnection) -> None:
    """Ages mostly 22-45 with tails beyond 18-65, a few per cent students, income often missing."""
    row = con.execute(
        """
        select
            avg(case when year(dt) - birth_year between 22 and 45 then 1 else 0 end),
            avg(case when year(dt) - birth_year < 18 or year(dt) - birth_year > 65 then 1 else 0 end),
            avg(case when occupation = 'STUDENT' then 1 else 0 end),
            avg(case when declared_monthly_income is null then 1 else 0 end),
            count(distinct city_tier),
            count(distinct kyc_level)
        from customers where dt = (select min(dt) from customers)
        """
    ).fetchone()
    assert row is not None
    core, tails, students, no_income, tiers, kycs = row
    assert core > 0.6
    assert 0.01 < tails < 0.15
    assert 0.01 < students < 0.1
    assert 0.15 < no_income < 0.6
    assert tiers == 5 and kycs == 3


def test_equal_instalments_are_level_and_bullets_pay_principal_at_the_end(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Equal-instalment payments differ by at most a fen except the last; bullets repay principal last."""
    uneven = con.execute(
        """
        select count(*) from (
            select loan_id, max(principal_due + interest_due) - min(principal_due + interest_due) spread
            from installments join loans using (loan_id)
            where repayment_method = 'EQUAL_INSTALLMENT'
              and installment_no < term_months
            group by all)
        where spread > 0.01
        """
    ).fetchone()
    assert uneven is not None and uneven[0] == 0
    early_principal = con.execute(
        """select count(*) from installments join loans using (loan_id)
           where repayment_method = 'BULLET' and installment_no < term_months and principal_due <> 0"""
    ).fetchone()
    assert early_principal is not None and early_principal[0] == 0


def test_behaviour_payments_match_purchase_transactions(con: duckdb.DuckDBPyConnection) -> None:
    """The app's daily payment totals are the day's successful purchases (as delivered on time)."""
    mismatched = con.execute(
        """
        with p as (
            select customer_id, cast(txn_ts as date) d, count(*) n, sum(amount) amount
            from transactions where txn_type = 'PURCHASE' and status = 'SUCCESS' and cast(txn_ts as date) = dt
            group by all),
        late as (select distinct customer_id, cast(txn_ts as date) d from transactions
                 where txn_type = 'PURCHASE' and cast(txn_ts as date) < dt)
        select count(*) from behaviour b
        left join p on p.customer_id = b.customer_id and p.d = b.business_date
        where not exists (select 1 from late where late.customer_id = b.customer_id and late.d = b.business_date)
          -- purchases of the last three days may still be on their way (late feed)
          and b.business_date <= (select max(dt) from behaviour) - 3
          and (b.payments_count <> coalesce(p.n, 0) or b.payments_amount <> coalesce(p.amount, 0))
        """
    ).fetchone()
    assert mismatched is not None and mismatched[0] == 0


def test_spring_festival_brings_red_packets(con: duckdb.DuckDBPyConnection) -> None:
    """Red packets per active customer are several times higher in the festival week."""
    row = con.execute(
        """select
              avg(red_packets_sent + red_packets_received) filter (where business_date between '2026-02-16' and '2026-02-23'),
              avg(red_packets_sent + red_packets_received) filter (where business_date between '2026-03-10' and '2026-03-31')
           from behaviour"""
    ).fetchone()
    assert row is not None
    festival, ordinary = row
    assert festival > 4 * ordinary

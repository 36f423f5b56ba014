"""Each rule of the landing contract, broken on purpose in a real delivery, holds back exactly that row.

D1 and D2 load clean. D3 is the generator's delivery plus appended rows: each appended
row breaks one rule (or is a clean helper row other cases refer to). After loading D3
with an unlimited quarantine share, every breaking row is quarantined naming its rule,
every helper row is loaded, and nothing of the generator's own D3 rows is held back.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from creditflow.contract import EXTRACTS, EXTRACTS_BY_NAME
from creditflow.settings import Settings
from creditflow.steps.ingest import ingest
from creditflow.transforms.ingest.rules import RULES, Rule
from creditflow.upstream.generate import GenerationResult
from creditflow.upstream.writer import csv_bytes
from tests.support.deliveries import copy_days, read_text, refresh_manifest

ALL_RULES: list[Rule] = [rule for rules in RULES.values() for rule in rules]
DAYS = ["2026-01-20", "2026-01-21", "2026-01-22"]
D3 = DAYS[2]
TS = "2026-01-22T12:00:00+08:00"


@dataclass
class Case:
    extract: str
    row: dict[str, str | None] | str  # a str is a raw CSV line (malformed input)
    rule: str | None  # None: a clean helper row that must load
    collateral: bool = (
        False  # a helper line of a schedule broken on purpose: held back for schedule rules
    )


class Builder:
    """Appends rows to D3's extracts, each with the rule it should be held back for."""

    def __init__(self, base_customers: list[str], existing: dict[str, str]) -> None:
        self.cases: list[Case] = []
        self._customers = iter(base_customers)
        self.existing = existing
        self._n = 0

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{7_000_000_000 + self._n}"

    def customer(self) -> str:
        return next(self._customers)

    def add(
        self, extract: str, rule: str | None, *, collateral: bool = False, **values: str | None
    ) -> dict[str, str | None]:
        row = {**self.template(extract), **values}
        self.cases.append(Case(extract, row, rule, collateral))
        return row

    def raw(self, extract: str, line: str, rule: str) -> None:
        self.cases.append(Case(extract, line, rule))

    def template(self, extract: str) -> dict[str, str | None]:
        if extract == "customers":
            return {
                "customer_id": self.fresh("C"),
                "registered_on": D3,
                "birth_year": "1990",
                "gender": "F",
                "city_tier": "2",
                "occupation": "SALARIED",
                "kyc_level": "2",
                "declared_monthly_income": "8000.00",
                "status": "ACTIVE",
                "updated_at": TS,
            }
        if extract == "behaviour":
            return {
                "customer_id": self.customer(),
                "business_date": D3,
                "app_sessions": "2",
                "app_minutes": "5.5",
                "payments_count": "1",
                "payments_amount": "10.00",
                "transfers_in_amount": "0.00",
                "transfers_out_amount": "0.00",
                "red_packets_sent": "0",
                "red_packets_received": "0",
                "contacts_added": "0",
                "device_changed": "false",
                "night_activity_share": "0.1",
                "wallet_balance": "100.00",
            }
        if extract == "loans":
            return {
                "loan_id": self.fresh("L"),
                "customer_id": self.existing["customer"],
                "originated_at": TS,
                "product": "CASH_LOAN",
                "principal": "1000.00",
                "term_months": "2",
                "annual_rate": "0.120000",
                "repayment_method": "EQUAL_INSTALLMENT",
            }
        if extract == "installments":
            return {
                "loan_id": None,
                "installment_no": "1",
                "due_date": "2026-02-22",
                "principal_due": "500.00",
                "interest_due": "10.00",
            }
        return {
            "txn_id": self.fresh("T"),
            "customer_id": self.existing["customer"],
            "loan_id": None,
            "txn_ts": TS,
            "txn_type": "PURCHASE",
            "amount": "10.00",
            "currency": "CNY",
            "channel": "APP",
            "merchant_category": "GROCERY",
            "status": "SUCCESS",
            "reverses_txn_id": None,
        }

    def loan_with_schedule(self, *, collateral: bool = False) -> str:
        """A clean two-instalment loan (1000.00 over two months); collateral if its schedule will be broken."""
        lid = str(self.add("loans", None)["loan_id"])
        self.add(
            "installments",
            None,
            collateral=collateral,
            loan_id=lid,
            installment_no="1",
            due_date="2026-02-22",
        )
        self.add(
            "installments",
            None,
            collateral=collateral,
            loan_id=lid,
            installment_no="2",
            due_date="2026-03-22",
        )
        return lid


BAD_VALUES = {
    # (extract, column): a value outside the contract's range or set
    ("customers", "gender"): "X",
    ("customers", "city_tier"): "6",
    ("customers", "occupation"): "ASTRONAUT",
    ("customers", "kyc_level"): "0",
    ("customers", "declared_monthly_income"): "-1.00",
    ("customers", "status"): "SUSPENDED",
    ("behaviour", "night_activity_share"): "1.5",
    ("loans", "product"): "MORTGAGE",
    ("loans", "principal"): "0.00",
    ("loans", "term_months"): "37",
    ("loans", "annual_rate"): "0.250000",
    ("loans", "repayment_method"): "BALLOON",
    ("transactions", "txn_type"): "CASHBACK",
    ("transactions", "amount"): "0.00",
    ("transactions", "currency"): "USD",
    ("transactions", "channel"): "ATM",
    ("transactions", "status"): "PENDING",
}


def build_cases(b: Builder) -> None:
    # generic rules: every not-null, allowed-set and range rule of the catalogue
    for rule in ALL_RULES:
        if rule.native is None:
            continue
        kind, kwargs = rule.native
        column = kwargs["column"]
        if kind == "ExpectColumnValuesToNotBeNull":
            value: str | None = None
        elif (rule.extract, column) in BAD_VALUES:
            value = BAD_VALUES[(rule.extract, column)]
        else:
            value = "-1"  # the remaining ranges are all ">= 0"
        if rule.extract == "installments":
            lid = b.loan_with_schedule(collateral=True)
            values = {
                "loan_id": lid,
                "installment_no": "3",
                "due_date": "2026-04-22",
                column: value,
            }
            b.add("installments", rule.id, **values)
            continue
        if rule.extract == "transactions" and column == "txn_type" and value is None:
            b.add("transactions", rule.id, txn_type=None)
            continue
        b.add(rule.extract, rule.id, **{column: value})

    c = "customers"
    dup_id = b.fresh("C")
    b.add(c, "customers.key_unique", customer_id=dup_id, birth_year="1980")
    b.add(c, "customers.key_unique", customer_id=dup_id, birth_year="1981")
    b.add(c, "customers.registered_on.not_future", registered_on="2026-01-23")
    b.add(c, "customers.birth_year.range", birth_year="1850")
    copy = b.add(c, None)
    b.cases.append(Case(c, dict(copy), "customers.duplicate_row"))

    e = "behaviour"
    who = b.customer()
    b.add(e, "behaviour.key_unique", customer_id=who, app_sessions="1")
    b.add(e, "behaviour.key_unique", customer_id=who, app_sessions="2")
    b.add(e, "behaviour.customer_id.known", customer_id="C999999999")
    b.add(e, "behaviour.business_date.is_delivery_date", business_date="2026-01-21")
    copy = b.add(e, None)
    b.cases.append(Case(e, dict(copy), "behaviour.duplicate_row"))
    b.raw(
        e,
        f"{b.customer()},{D3},2,5.5,1,10.00,0.00,0.00,0,0,0,false,0.1,100.00,EXTRA",
        "behaviour.malformed_line",
    )
    b.raw(
        e,
        f"{b.customer()},{D3},2,5.5,1,1O.00,0.00,0.00,0,0,0,false,0.1,100.00",
        "behaviour.payments_amount.type",
    )

    e = "loans"
    dup_loan = b.fresh("L")
    b.add(e, "loans.key_unique", loan_id=dup_loan, principal="1000.00")
    b.add(e, "loans.key_unique", loan_id=dup_loan, principal="2000.00")
    b.add(e, "loans.loan_id.unique_across_dates", loan_id=b.existing["loan"])
    b.add(e, "loans.customer_id.known", customer_id="C999999999")
    # 00:30 in UTC+9 is 23:30 the day before in Shanghai: the date is taken in Asia/Shanghai
    b.add(e, "loans.originated_at.on_business_date", originated_at="2026-01-22T00:30:00+09:00")
    copy = b.add(e, None)
    b.cases.append(Case(e, dict(copy), "loans.duplicate_row"))

    e = "installments"
    b.add(e, "installments.loan_id.known", loan_id="L999999999999999")
    lid = b.add("loans", None, term_months="2")["loan_id"]
    b.add(e, None, collateral=True, loan_id=lid, installment_no="1")
    b.add(
        e,
        "installments.installment_no.within_term",
        loan_id=lid,
        installment_no="3",
        due_date="2026-04-22",
    )
    b.add(
        e,
        "installments.installment_no.not_already_scheduled",
        loan_id=b.existing["loan"],
        installment_no="1",
    )
    lid = b.add("loans", None)["loan_id"]
    b.add(
        e, "installments.due_date.after_origination", loan_id=lid, installment_no="1", due_date=D3
    )
    b.add(e, None, loan_id=lid, installment_no="2", due_date="2026-03-22")
    lid = b.add("loans", None)["loan_id"]
    b.add(e, None, loan_id=lid, installment_no="1", due_date="2026-03-22")
    b.add(
        e,
        "installments.due_date.increasing",
        loan_id=lid,
        installment_no="2",
        due_date="2026-02-22",
    )
    lid = b.add("loans", None)["loan_id"]
    b.add(e, "installments.schedule.sums_to_principal", loan_id=lid, installment_no="1")
    b.add(
        e,
        "installments.schedule.sums_to_principal",
        loan_id=lid,
        installment_no="2",
        due_date="2026-03-22",
        principal_due="400.00",
    )
    lid = b.add("loans", None)["loan_id"]
    b.add(
        e,
        "installments.schedule.complete",
        loan_id=lid,
        installment_no="1",
        principal_due="1000.00",
    )
    lid = b.loan_with_schedule(collateral=True)
    b.add(
        e,
        "installments.key_unique",
        loan_id=lid,
        installment_no="3",
        due_date="2026-04-22",
        interest_due="1.00",
    )
    b.add(
        e,
        "installments.key_unique",
        loan_id=lid,
        installment_no="3",
        due_date="2026-04-22",
        interest_due="2.00",
    )
    # an exact copy of a schedule line is dropped before schedule rules run: the schedule stays whole
    lid = b.loan_with_schedule()
    line = next(
        c.row for c in reversed(b.cases) if isinstance(c.row, dict) and c.row.get("loan_id") == lid
    )
    b.cases.append(Case(e, dict(line), "installments.duplicate_row"))

    t = "transactions"
    dup_txn = b.fresh("T")
    b.add(t, "transactions.key_unique", txn_id=dup_txn, amount="1.00")
    b.add(t, "transactions.key_unique", txn_id=dup_txn, amount="2.00")
    b.add(t, "transactions.txn_id.unique_across_dates", txn_id=b.existing["txn"])
    b.add(t, "transactions.customer_id.known", customer_id="C999999999")
    b.add(t, "transactions.loan_id.required_for_loan_types", txn_type="REPAYMENT")
    b.add(t, "transactions.loan_id.required_for_loan_types", loan_id=b.existing["loan"])
    b.add(
        t,
        "transactions.loan_id.known",
        txn_type="REPAYMENT",
        loan_id="L999999999999999",
        merchant_category=None,
    )
    b.add(
        t,
        "transactions.loan_id.belongs_to_customer",
        txn_type="REPAYMENT",
        loan_id=b.existing["loan"],
        customer_id=b.existing["other_customer"],
    )
    b.add(t, "transactions.txn_ts.within_window", txn_ts="2026-01-23T09:00:00+08:00")
    b.add(t, "transactions.txn_ts.within_window", txn_ts="2026-01-17T09:00:00+08:00")
    b.add(t, None, txn_ts="2026-01-19T09:00:00+08:00")  # three days late is allowed
    b.add(t, "transactions.reverses_txn_id.required_for_reversal", txn_type="REVERSAL")
    b.add(
        t, "transactions.reverses_txn_id.required_for_reversal", reverses_txn_id=b.existing["txn"]
    )
    b.add(
        t,
        "transactions.reverses_txn_id.names_a_repayment",
        txn_type="REVERSAL",
        reverses_txn_id=b.existing["txn"],
    )
    lid = b.loan_with_schedule()
    owner = b.existing["customer"]
    repay = b.add(
        t,
        None,
        txn_type="REPAYMENT",
        loan_id=lid,
        customer_id=owner,
        channel="AUTO_DEBIT",
        merchant_category=None,
    )
    b.add(
        t,
        None,
        txn_type="REVERSAL",
        reverses_txn_id=repay["txn_id"],
        customer_id=owner,
        txn_ts="2026-01-22T13:00:00+08:00",
    )
    b.add(
        t,
        "transactions.reverses_txn_id.once",
        txn_type="REVERSAL",
        reverses_txn_id=repay["txn_id"],
        customer_id=owner,
        txn_ts="2026-01-22T14:00:00+08:00",
    )
    bad = b.add(
        t,
        "transactions.amount.range",
        txn_type="REPAYMENT",
        loan_id=lid,
        customer_id=owner,
        amount="-5.00",
    )
    b.add(
        t,
        "transactions.reverses_txn_id.target_not_held_back",
        txn_type="REVERSAL",
        reverses_txn_id=bad["txn_id"],
        customer_id=owner,
    )
    b.raw(
        t,
        f"{b.fresh('T')},{owner},,{TS},PURCHASE,abc,CNY,APP,GROCERY,SUCCESS,",
        "transactions.amount.type",
    )
    b.raw(t, f"{b.fresh('T')},{owner},,{TS},PURCHASE,1.00,CNY,APP", "transactions.malformed_line")
    copy = b.add(t, None)
    b.cases.append(Case(t, dict(copy), "transactions.duplicate_row"))


def write_corrupted_day(folder: Path, cases: list[Case]) -> dict[tuple[str, int], Case]:
    """Append the cases to D3's files; returns each case by (extract, CSV line)."""
    at: dict[tuple[str, int], Case] = {}
    for e in EXTRACTS:
        df = read_text(folder, e.name)
        mine = [c for c in cases if c.extract == e.name]
        rows = [c.row for c in mine if isinstance(c.row, dict)]
        if rows:
            df = pl.concat([df, pl.DataFrame(rows, schema={k: pl.String for k in e.column_names})])
        text = csv_bytes(df)
        line = df.height + 1
        for c in mine:
            if isinstance(c.row, str):
                text += (c.row + "\n").encode()
        # lines: the frame's rows first (header is line 1), then the raw lines in order
        frame_line = df.height - len(rows) + 1
        raw_line = line
        for c in mine:
            if isinstance(c.row, dict):
                frame_line += 1
                at[(e.name, frame_line)] = c
            else:
                raw_line += 1
                at[(e.name, raw_line)] = c
        (folder / e.file_name("csv")).write_bytes(gzip.compress(text, mtime=0))
    refresh_manifest(folder)
    return at


@pytest.fixture(scope="module")
def outcome(
    small_book: GenerationResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, list]:
    home = tmp_path_factory.mktemp("rules")
    copy_days(small_book.landing, home / "landing", DAYS)
    settings = Settings(home=home, max_quarantine_share=1.0)
    for d in DAYS[:2]:
        ingest(settings, date.fromisoformat(d))
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    customers = [
        r[0]
        for r in con.execute(
            "select customer_id from customers where dt = '2026-01-20' order by 1"
        ).fetchall()
    ]
    loan, borrower = con.execute(
        "select loan_id, customer_id from loans order by loan_id limit 1"
    ).fetchone()  # type: ignore[misc]
    txn = con.execute(
        "select txn_id from transactions where txn_type = 'PURCHASE' order by txn_id limit 1"
    ).fetchone()[0]  # type: ignore[index]
    con.close()
    folder = settings.landing_dir / f"dt={D3}"
    active_d3 = set(read_text(folder, "behaviour")["customer_id"].to_list())
    free = [c for c in customers if c not in active_d3 and c != borrower]
    b = Builder(free, {"customer": borrower, "other_customer": free[-1], "loan": loan, "txn": txn})
    build_cases(b)
    at = write_corrupted_day(folder, b.cases)
    ingest(settings, date.fromisoformat(D3))
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    held = con.execute(
        "select extract, line, failed_rules from quarantine where dt = $d",
        {"d": date.fromisoformat(D3)},
    ).fetchall()
    con.close()
    return at, held


def test_every_breaking_row_is_held_back_for_its_rule(outcome: tuple[dict, list]) -> None:
    """Each appended row that breaks a rule is quarantined, and names that rule."""
    at, held = outcome
    held_rules = {(e, line): rules for e, line, rules in held}
    missing = []
    for (extract, line), case in at.items():
        if case.rule is None:
            continue
        rules = held_rules.get((extract, line))
        if rules is None or case.rule not in rules:
            missing.append((case.rule, extract, line, rules))
    assert not missing


def test_clean_rows_are_not_held_back(outcome: tuple[dict, list]) -> None:
    """Only breaking rows are quarantined, plus the other lines of schedules broken on purpose
    (held back for schedule rules only); helper rows and the generator's own rows load."""
    at, held = outcome
    breaking = {k for k, c in at.items() if c.rule is not None}
    collateral = {k for k, c in at.items() if c.collateral}
    wrongly = [
        (e, line, rules)
        for e, line, rules in held
        if (e, line) not in breaking
        and not (
            (e, line) in collateral and all(r.startswith("installments.schedule.") for r in rules)
        )
    ]
    assert not wrongly
    assert len(held) >= len(breaking)


def test_every_rule_of_the_catalogue_has_a_case() -> None:
    """A new rule without a corrupted-delivery case fails here."""
    b = Builder(
        [f"C{i:09d}" for i in range(1000)],
        {"customer": "C0", "other_customer": "C1", "loan": "L0", "txn": "T0"},
    )
    build_cases(b)
    covered = {c.rule for c in b.cases}
    rules: list[Rule] = ALL_RULES
    assert {r.id for r in rules} <= covered
    assert {
        f"{e}.malformed_line" for e in EXTRACTS_BY_NAME if e in ("behaviour", "transactions")
    } <= covered

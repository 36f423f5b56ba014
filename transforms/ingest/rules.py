"""Every row-level rule of the landing contract, once.

Each rule has a SQL predicate that is true for a row that breaks it (used to route rows
to quarantine in one scan) and the Great Expectations form of the same rule (a native
expectation where GX has one with the same meaning, else ``UnexpectedRowsExpectation``
over the predicate). Validation checks that GX and the router count the same rows.

Predicates see the staged row as ``r``, the whole staged file as ``{t}`` and its keys that
repeat as ``{repeated}`` (filled in by ``bind``), and these relations, prepared by the loader:
``ctx`` (one row: ``business_date``), ``ref_customers``, ``ref_loans``, ``ref_repayments``
(known as of the business date, today's clean rows included), and ``prior_loans``,
``prior_txns``, ``prior_installments``, ``prior_reversals`` (loaded on other dates).
Values from files never enter this text: it is fixed, reviewed SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditflow.contract import (
    CHANNELS,
    CUSTOMER_STATUSES,
    EXTRACTS_BY_NAME,
    GENDERS,
    LATE_TXN_DAYS,
    OCCUPATIONS,
    PRODUCTS,
    REPAYMENT_METHODS,
    TXN_STATUSES,
    TXN_TYPES,
)

RULES_VERSION = "2026.11.1"  # bump when a rule changes: it is part of every load's identity

BUSINESS_DATE = "(select business_date from ctx)"
# The Shanghai calendar date of a TIMESTAMPTZ. Asia/Shanghai has kept UTC+8 without daylight
# saving since 1991, so epoch arithmetic gives the same date as an ICU time-zone lookup at a
# tenth of the cost (it is evaluated for every transaction of the day).
SHANGHAI_DATE = (
    "(date '1970-01-01' + cast((epoch_us({col}) + 28800000000) // 86400000000 as integer))"
)


@dataclass(frozen=True)
class Rule:
    id: str  # extract.rule, stable: it names the check in data_quality and quarantine
    extract: str
    description: str  # the contract's words
    violation: str  # SQL, true when row r breaks the rule
    columns: tuple[str, ...] = ()
    native: tuple[str, dict] | None = None  # (GX expectation class name, kwargs)
    # "staging": applied while staging (exact duplicates); "row": one scan over staged rows;
    # "cascade": after that scan, may read fail_<extract> (_ord and rules of failing rows)
    phase: str = "row"


def bind(violation: str, table: str) -> str:
    """Fill the staged relation (and its keys that repeat, found while staging) into a rule's SQL."""
    return violation.replace("{t}", table).replace("{repeated}", f"{table}_repeated")


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def not_null(extract: str, column: str) -> Rule:
    return Rule(
        id=f"{extract}.{column}.not_null",
        extract=extract,
        description=f"{column} is required",
        violation=f"r.{column} is null",
        columns=(column,),
        native=("ExpectColumnValuesToNotBeNull", {"column": column}),
    )


def in_set(extract: str, column: str, values: tuple[str, ...]) -> Rule:
    return Rule(
        id=f"{extract}.{column}.allowed",
        extract=extract,
        description=f"{column} in {', '.join(values)}",
        violation=f"r.{column} not in {_sql_list(values)}",
        columns=(column,),
        native=("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)}),
    )


def between(
    extract: str, column: str, low: float | None, high: float | None, *, strict_low: bool = False
) -> Rule:
    parts, text = [], []
    if low is not None:
        parts.append(f"r.{column} {'<=' if strict_low else '<'} {low}")
        text.append(f"{'>' if strict_low else '>='} {low}")
    if high is not None:
        parts.append(f"r.{column} > {high}")
        text.append(f"<= {high}")
    kwargs: dict = {"column": column, "min_value": low, "max_value": high}
    if strict_low:
        kwargs["strict_min"] = True
    return Rule(
        id=f"{extract}.{column}.range",
        extract=extract,
        description=f"{column} {' and '.join(text)}",
        violation=" or ".join(parts),
        columns=(column,),
        native=("ExpectColumnValuesToBeBetween", kwargs),
    )


def custom(
    extract: str, name: str, description: str, violation: str, *columns: str, phase: str = "row"
) -> Rule:
    return Rule(
        id=f"{extract}.{name}",
        extract=extract,
        description=description,
        violation=violation,
        columns=columns,
        phase=phase,
    )


def duplicates(extract: str, key: tuple[str, ...]) -> list[Rule]:
    """Exact copies after the first are dropped; a key delivered with different contents is ambiguous."""
    cols = ", ".join(EXTRACTS_BY_NAME[extract].column_names)
    keys = ", ".join(key)
    match = " and ".join(f"k.{k} = r.{k}" for k in key)
    return [
        custom(
            extract,
            "duplicate_row",
            "an exact copy of an earlier row in the file (the first copy is kept)",
            f"row_number() over (partition by {cols} order by r._ord) > 1",
            phase="staging",
        ),
        custom(
            extract,
            "key_unique",
            f"({keys}) unique in the file",
            # exact copies were removed while staging, so a key that still repeats was
            # delivered with different contents; null key parts never match (not_null
            # holds those rows back instead)
            f"exists (select 1 from (select {keys} from {{t}} semi join {{repeated}} using ({keys})"
            f" group by all having count(*) > 1) k where {match})",
            *key,
        ),
    ]


def _known(extract: str, column: str, relation: str, key: str, what: str) -> Rule:
    return custom(
        extract,
        f"{column}.known",
        f"{column} is a known {what}",
        f"r.{column} is not null and not exists (select 1 from {relation} k where k.{key} = r.{column})",
        column,
    )


def _customers() -> list[Rule]:
    e = "customers"
    return [
        *[not_null(e, c.name) for c in EXTRACTS_BY_NAME[e].columns if c.required],
        *duplicates(e, ("customer_id",)),
        custom(
            e,
            "registered_on.not_future",
            "registered_on <= business date",
            f"r.registered_on > {BUSINESS_DATE}",
            "registered_on",
        ),
        custom(
            e,
            "birth_year.range",
            "1900 <= birth_year <= business year",
            f"r.birth_year < 1900 or r.birth_year > year({BUSINESS_DATE})",
            "birth_year",
        ),
        in_set(e, "gender", GENDERS),
        between(e, "city_tier", 1, 5),
        in_set(e, "occupation", OCCUPATIONS),
        between(e, "kyc_level", 1, 3),
        between(e, "declared_monthly_income", 0, None),
        in_set(e, "status", CUSTOMER_STATUSES),
    ]


def _behaviour() -> list[Rule]:
    e = "behaviour"
    non_negative = (
        "app_sessions",
        "app_minutes",
        "payments_count",
        "payments_amount",
        "transfers_in_amount",
        "transfers_out_amount",
        "red_packets_sent",
        "red_packets_received",
        "contacts_added",
        "wallet_balance",
    )
    return [
        *[not_null(e, c.name) for c in EXTRACTS_BY_NAME[e].columns if c.required],
        *duplicates(e, ("customer_id", "business_date")),
        _known(e, "customer_id", "ref_customers", "customer_id", "customer"),
        custom(
            e,
            "business_date.is_delivery_date",
            "business_date = the folder's date",
            f"r.business_date <> {BUSINESS_DATE}",
            "business_date",
        ),
        *[between(e, c, 0, None) for c in non_negative],
        between(e, "night_activity_share", 0, 1),
    ]


def _loans() -> list[Rule]:
    e = "loans"
    return [
        *[not_null(e, c.name) for c in EXTRACTS_BY_NAME[e].columns if c.required],
        *duplicates(e, ("loan_id",)),
        custom(
            e,
            "loan_id.unique_across_dates",
            "loan_id unique across all dates",
            "exists (select 1 from prior_loans p where p.loan_id = r.loan_id)",
            "loan_id",
        ),
        _known(e, "customer_id", "ref_customers", "customer_id", "customer"),
        custom(
            e,
            "originated_at.on_business_date",
            "originated_at is on the business date (Asia/Shanghai)",
            f"{SHANGHAI_DATE.format(col='r.originated_at')} <> {BUSINESS_DATE}",
            "originated_at",
        ),
        in_set(e, "product", PRODUCTS),
        between(e, "principal", 0, None, strict_low=True),
        between(e, "term_months", 1, 36),
        between(e, "annual_rate", 0, 0.24, strict_low=True),
        in_set(e, "repayment_method", REPAYMENT_METHODS),
    ]


def _installments() -> list[Rule]:
    e = "installments"
    loan = "(select {col} from ref_loans k where k.loan_id = r.loan_id)"
    return [
        *[not_null(e, c.name) for c in EXTRACTS_BY_NAME[e].columns if c.required],
        *duplicates(e, ("loan_id", "installment_no")),
        _known(e, "loan_id", "ref_loans", "loan_id", "loan (this or an earlier delivery)"),
        custom(
            e,
            "installment_no.within_term",
            "installment_no in 1..term_months",
            f"r.installment_no < 1 or r.installment_no > {loan.format(col='term_months')}",
            "installment_no",
        ),
        custom(
            e,
            "installment_no.not_already_scheduled",
            "installment_no unique per loan across deliveries",
            "exists (select 1 from prior_installments p where p.loan_id = r.loan_id and p.installment_no = r.installment_no)",
            "loan_id",
            "installment_no",
        ),
        custom(
            e,
            "due_date.after_origination",
            "due_date after the origination date",
            f"r.due_date <= {loan.format(col='origination_date')}",
            "due_date",
        ),
        custom(
            e,
            "due_date.increasing",
            "due_date increases with installment_no",
            "r.due_date <= lag(r.due_date) over (partition by r.loan_id order by r.installment_no)",
            "due_date",
        ),
        between(e, "principal_due", 0, None),
        between(e, "interest_due", 0, None),
        custom(
            e,
            "schedule.sums_to_principal",
            "principal_due sums to the loan's principal (all lines of the loan are held back)",
            f"sum(r.principal_due) over (partition by r.loan_id) <> {loan.format(col='principal')}",
            "principal_due",
        ),
        custom(
            e,
            "schedule.complete",
            "a loan's schedule has term_months lines (all lines of the loan are held back)",
            f"count(*) over (partition by r.loan_id) <> {loan.format(col='term_months')}",
            "installment_no",
        ),
    ]


def _transactions() -> list[Rule]:
    e = "transactions"
    day = SHANGHAI_DATE.format(col="r.txn_ts")
    return [
        *[not_null(e, c.name) for c in EXTRACTS_BY_NAME[e].columns if c.required],
        *duplicates(e, ("txn_id",)),
        custom(
            e,
            "txn_id.unique_across_dates",
            "txn_id unique across all dates",
            "exists (select 1 from prior_txns p where p.txn_id = r.txn_id)",
            "txn_id",
        ),
        _known(e, "customer_id", "ref_customers", "customer_id", "customer"),
        custom(
            e,
            "loan_id.required_for_loan_types",
            "loan_id required for DRAWDOWN and REPAYMENT, else null",
            "(r.txn_type in ('DRAWDOWN', 'REPAYMENT')) <> (r.loan_id is not null)",
            "loan_id",
            "txn_type",
        ),
        _known(e, "loan_id", "ref_loans", "loan_id", "loan"),
        custom(
            e,
            "loan_id.belongs_to_customer",
            "the loan belongs to the transaction's customer",
            "r.loan_id is not null and exists (select 1 from ref_loans k where k.loan_id = r.loan_id and k.customer_id <> r.customer_id)",
            "loan_id",
            "customer_id",
        ),
        custom(
            e,
            "txn_ts.within_window",
            f"txn_ts Shanghai date <= business date and at most {LATE_TXN_DAYS} days late",
            f"{day} > {BUSINESS_DATE} or {day} < {BUSINESS_DATE} - {LATE_TXN_DAYS}",
            "txn_ts",
        ),
        in_set(e, "txn_type", TXN_TYPES),
        between(e, "amount", 0, None, strict_low=True),
        in_set(e, "currency", ("CNY",)),
        in_set(e, "channel", CHANNELS),
        in_set(e, "status", TXN_STATUSES),
        custom(
            e,
            "reverses_txn_id.required_for_reversal",
            "reverses_txn_id required for REVERSAL, else null",
            "(r.txn_type = 'REVERSAL') <> (r.reverses_txn_id is not null)",
            "reverses_txn_id",
            "txn_type",
        ),
        custom(
            e,
            "reverses_txn_id.names_a_repayment",
            "a REVERSAL names a known REPAYMENT",
            "r.reverses_txn_id is not null and not exists (select 1 from ref_repayments k where k.txn_id = r.reverses_txn_id)",
            "reverses_txn_id",
        ),
        custom(
            e,
            "reverses_txn_id.once",
            "a repayment is reversed at most once (a later second reversal is held back)",
            "r.reverses_txn_id is not null and (exists (select 1 from prior_reversals p where p.reverses_txn_id = r.reverses_txn_id)"
            " or exists (select 1 from (select _ord, row_number() over (partition by reverses_txn_id order by txn_ts, _ord) as n"
            " from {t} where reverses_txn_id is not null) x where x.n > 1 and x._ord = r._ord))",
            "reverses_txn_id",
        ),
        custom(
            e,
            "reverses_txn_id.target_not_held_back",
            "the REPAYMENT a REVERSAL names was not itself held back today",
            "r.reverses_txn_id is not null and exists (select 1 from fail_transactions f join {t} s on s._ord = f._ord"
            " where s.txn_id = r.reverses_txn_id)",
            "reverses_txn_id",
            phase="cascade",
        ),
    ]


RULES: dict[str, list[Rule]] = {
    "customers": _customers(),
    "behaviour": _behaviour(),
    "loans": _loans(),
    "installments": _installments(),
    "transactions": _transactions(),
}

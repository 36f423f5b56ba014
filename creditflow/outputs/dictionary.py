"""The data dictionary of the published tables: one definition, rendered to docs/data_dictionary.md.

Every table under ``<published>/<table>/dt=YYYY-MM-DD/part-0.parquet`` is described here once:
its grain, a one-line description, and per column the type as it is in the Parquet file (in
DuckDB's spelling, as ``DESCRIBE`` prints it when DuckDB reads the file), the unit, the meaning
and whether ``docs/contract.md`` section 3 requires it. The partition column ``dt`` is listed
last, where every Hive-aware reader puts it.

The types are the code's truth, not this file's: ``tests/test_readers.py`` compares this
dictionary with the Parquet files a real backfill publishes (same columns, same order, same
types, and every contract column present), and checks that ``docs/data_dictionary.md`` equals
``render_markdown()`` (``creditflow.outputs.dictionary_page``, which lays the page out). After
changing a table, update it here and regenerate the page::

    .venv/bin/python -c "from creditflow.outputs.dictionary_page import write_markdown; write_markdown()"

The BI catalog (``creditflow.outputs.bi_catalog``) takes its table descriptions and column comments
from here as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditflow.contract import bucket_ranges

MONEY = "DECIMAL(18,2)"
CNY = "CNY"
SHARE = "share 0-1"
ANNUAL = "share per year"  # an annual rate: 0.18 is 18% a year
BUCKETS = bucket_ranges()  # "M0 (dpd 0), M1 (1-30), ..., M6+ (over 180)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as DuckDB names the Parquet column's type
    unit: str  # "" where a unit means nothing (identifiers, codes, flags)
    meaning: str
    contract: bool = False  # required by docs/contract.md section 3
    defined_in: str = ""  # "file: function" or a SQL model, where it differs from the table's


@dataclass(frozen=True)
class Table:
    name: str
    grain: str
    description: str
    source: str  # "file: function" (or SQL model) that computes the rows, and what publishes them
    partitions: str  # which business dates have a partition
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def contract_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.contract]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _dt(
    contract: bool = True,
    meaning: str = "Business date (Asia/Shanghai) of the run that wrote the row.",
) -> Column:
    where = "Partition column: in the path (dt=YYYY-MM-DD), not in the file."
    return Column("dt", "DATE", "date", f"{meaning} {where}", contract)


def _run_id(contract: bool = True) -> Column:
    meaning = "The run that wrote the row; its record in `runs` names the code, input checksums and model version."
    return Column("run_id", "VARCHAR", "", meaning, contract)


EVERY_DATE = (
    "one per business date whose nightly run succeeded (a failed night publishes nothing new)"
)

# fmt: off
TABLES: tuple[Table, ...] = (
    Table(
        name="limit_updates",
        grain="customer x dt; every customer known on dt is evaluated",
        description="The credit limit each customer may use from effective_from, with the score, the action and the policy rule that set it.",
        source="policy/decisions.py: decide_limits (rows of the warehouse table limit_decisions, columns PUBLISHED), published by steps/limits.py: run_limits",
        partitions=EVERY_DATE,
        columns=(
            Column("customer_id", "VARCHAR", "", "Customer identifier.", True, "transforms/sql/limit_inputs.sql"),
            Column("model_version", "VARCHAR", "", "The champion model that scored the customer; null before any model is promoted (the starter rule sets limits).", True, "policy/decisions.py: decide_limits"),
            Column("pd", "DOUBLE", "probability", "Model probability of default: reaching dpd ≥ 30 on some loan within the next 90 days. Null without a model.", True, "models/scoring.py: score_population"),
            Column("score", "INTEGER", "points", "Credit score from pd: 600 means good:bad odds of 50:1, every 20 points doubles the odds. Null without a model.", True, "models/scoring.py: points"),
            Column("risk_grade", "VARCHAR", "", "Risk grade by pd band: A (pd < 0.01), B (< 0.02), C (< 0.04), D (< 0.08), E (< 0.15), F (< 0.30), G (the rest). Null without a model.", True, "policy/ladder.py: grade_of"),
            Column("previous_limit", MONEY, CNY, "The limit set by the latest evaluation before dt; null at the customer's first evaluation.", True, "transforms/sql/limit_inputs.sql"),
            Column("new_limit", MONEY, CNY, "The limit from effective_from: 0 to 200,000, a multiple of 100.", True, "policy/ladder.py: decide"),
            Column("action", "VARCHAR", "", "NEW, INCREASE, DECREASE, UNCHANGED, FREEZE (limit 0, may come back) or CLOSE (limit 0, will not come back).", True, "policy/ladder.py: decide"),
            Column("policy_rule", "VARCHAR", "", "The policy rule that set new_limit: eligibility.<reason>, delinquency.freeze, model.freeze, band, starter, expected_loss, cap.income, cap.product, delinquency.no_increase, change.interval, change.max_increase or change.outstanding_floor (policy/limit_policy.toml).", True, "policy/ladder.py: decide"),
            Column("reason_codes", "VARCHAR[]", "", "Up to 4 plain-language features that pushed the customer's risk up, strongest first; filled for every DECREASE and FREEZE of a scored customer, otherwise an empty list.", True, "policy/decisions.py: _with_reasons"),
            Column("effective_from", "DATE", "date", "The first business date the new limit applies: dt + 1.", True, "policy/decisions.py: decide_limits"),
            _run_id(),
            Column("policy_version", "VARCHAR", "", "Limit policy version plus the first 8 hex digits of the policy file's sha256 (e.g. 2026.11.1+1a2b3c4d).", defined_in="policy/config.py: LimitPolicy.full_version"),
            Column("dpd", "BIGINT", "days", "The customer's days past due on dt: the maximum over the customer's loans (0 when nothing is overdue).", defined_in="transforms/sql/limit_inputs.sql"),
            Column("outstanding_balance", MONEY, CNY, "Outstanding principal over all the customer's loans at the end of dt.", defined_in="transforms/sql/limit_inputs.sql"),
            Column("offered_annual_rate", "DECIMAL(8,6)", ANNUAL, "The annual rate offered with new_limit, rounded up to the policy's rate_step and never above its max_annual_rate (0.24 at most); null when new_limit = 0. Null in partitions published before pricing.", defined_in="policy/pricing.py: price"),
            Column("pricing_rule", "VARCHAR", "", "What set offered_annual_rate: pricing.starter (no model score: the starter rate), pricing.grade (the grade's rate), pricing.cost (the cost build-up: funding + operating cost + expected loss + margin, above the grade's rate) or pricing.cap (cut to max_annual_rate); null when new_limit = 0.", defined_in="policy/pricing.py: price"),
            _dt(),
        ),
    ),
    Table(
        name="loan_delinquency",
        grain="loan x dt; every loan with outstanding principal > 0 at the end of dt",
        description="Each open loan's balance, arrears, days past due and delinquency bucket at the end of the business date.",
        source="transforms/sql/loan_delinquency.sql (from the ledger's loan_daily, transforms/ledger.py: state_rows), published by steps/delinquency.py: run_ledger",
        partitions=EVERY_DATE,
        columns=(
            Column("loan_id", "VARCHAR", "", "Loan identifier.", True),
            Column("customer_id", "VARCHAR", "", "The borrower.", True),
            Column("product", "VARCHAR", "", "CASH_LOAN or MERCHANT_LOAN.", True),
            Column("origination_month", "DATE", "month (first day)", "Month the loan was originated in (Asia/Shanghai), as its first day.", True),
            Column("months_on_book", "INTEGER", "months", "Calendar months from the origination month to dt's month (0 in the origination month).", True),
            Column("outstanding_principal", MONEY, CNY, "Principal not yet repaid, after repayments (applied oldest instalment first, interest before principal) and reversals.", True),
            Column("overdue_amount", MONEY, CNY, "Principal and interest due before dt and not paid by the end of dt.", True),
            Column("dpd", "INTEGER", "days", "Days past due: dt minus the due date of the oldest overdue instalment; 0 when nothing is overdue.", True),
            Column("bucket", "VARCHAR", "", f"Delinquency bucket by dpd: {BUCKETS}. NPL = M4 and above.", True),
            _run_id(),
            _dt(),
        ),
    ),
    Table(
        name="delinquency_summary",
        grain="dt x product x city_tier x bucket; every bucket for every segment present (zeros included)",
        description="Open accounts and outstanding principal per product, city tier and delinquency bucket, with each bucket's share of its segment.",
        source="transforms/sql/delinquency_summary.sql, published by steps/delinquency.py: run_ledger",
        partitions=EVERY_DATE,
        columns=(
            Column("product", "VARCHAR", "", "CASH_LOAN or MERCHANT_LOAN.", True),
            Column("city_tier", "INTEGER", "tier 1-5", "The borrower's city tier as known on dt; null when the customer record is missing.", True),
            Column("bucket", "VARCHAR", "", f"Delinquency bucket: {BUCKETS}.", True),
            Column("accounts", "BIGINT", "count", "Loans with outstanding principal in the segment and bucket.", True),
            Column("balance", MONEY, CNY, "Their outstanding principal.", True),
            Column("pct_accounts", "DOUBLE", SHARE, "accounts as a share of the segment's (product x city_tier) accounts.", True),
            Column("pct_balance", "DOUBLE", SHARE, "balance as a share of the segment's balance.", True),
            _run_id(),
            _dt(),
        ),
    ),
    Table(
        name="roll_rates",
        grain="dt x from_bucket x to_bucket; bucket about 30 days earlier → bucket on dt",
        description="Where the loans open 30 days earlier are now: accounts and balance rolling from each bucket to each bucket (or CLOSED).",
        source="transforms/sql/roll_rates.sql, published by steps/delinquency.py: run_ledger",
        partitions=EVERY_DATE + "; empty (0 rows) until the ledger holds a date at least 30 days before dt",
        columns=(
            Column("from_bucket", "VARCHAR", "", "Bucket on the comparison date: the latest processed date on or before dt - 30.", True),
            Column("to_bucket", "VARCHAR", "", "Bucket on dt, or CLOSED when the loan no longer has outstanding principal.", True),
            Column("accounts", "BIGINT", "count", "Loans that moved from from_bucket to to_bucket.", True),
            Column("balance", MONEY, CNY, "Their outstanding principal on the comparison date.", True),
            Column("account_rate", "DOUBLE", SHARE, "accounts as a share of from_bucket's accounts (each from_bucket sums to 1).", True),
            Column("balance_rate", "DOUBLE", SHARE, "balance as a share of from_bucket's balance (each from_bucket sums to 1).", True),
            _run_id(),
            _dt(),
        ),
    ),
    Table(
        name="vintage",
        grain="dt x origination_month x months_on_book",
        description="Vintage curves: of the loans originated in a month, the share that had ever been 30+ (90+) days past due by each month on book.",
        source="transforms/sql/vintage.sql, published by steps/delinquency.py: run_ledger",
        partitions=EVERY_DATE,
        columns=(
            Column("origination_month", "DATE", "month (first day)", "The vintage: month of origination, as its first day.", True),
            Column("months_on_book", "INTEGER", "months", "Months since the origination month (0 = the origination month).", True),
            Column("loans", "BIGINT", "count", "Loans originated in the vintage (known on dt, repaid ones included).", True),
            Column("principal", MONEY, CNY, "Their originated principal.", True),
            Column("ever_30plus_rate", "DOUBLE", SHARE, "Share of the vintage's loans that had reached dpd ≥ 30 by the end of this month on book; null for months after dt's month.", True),
            Column("ever_90plus_rate", "DOUBLE", SHARE, "The same for dpd ≥ 90.", True),
            Column("ever_30plus_rate_principal", "DOUBLE", SHARE, "As ever_30plus_rate, weighted by originated principal."),
            Column("ever_90plus_rate_principal", "DOUBLE", SHARE, "As ever_90plus_rate, weighted by originated principal."),
            _run_id(),
            _dt(),
        ),
    ),
    Table(
        name="delinquency_rates",
        grain="dt x product",
        description="30+ delinquency per product, coincident (today's balance) and lagged (the balance 30 days earlier), so a growing book does not flatter the rate.",
        source="transforms/sql/delinquency_rates.sql, published by steps/delinquency.py: run_ledger (an addition to the contract)",
        partitions=EVERY_DATE,
        columns=(
            Column("product", "VARCHAR", "", "CASH_LOAN or MERCHANT_LOAN."),
            Column("accounts", "BIGINT", "count", "Loans with outstanding principal on dt."),
            Column("balance", MONEY, CNY, "Their outstanding principal."),
            Column("accounts_30plus", "BIGINT", "count", "Of them, loans with dpd ≥ 30."),
            Column("balance_30plus", MONEY, CNY, "Outstanding principal of the loans with dpd ≥ 30." ),
            Column("coincident_30plus_rate", "DOUBLE", SHARE, "balance_30plus / balance."),
            Column("coincident_30plus_account_rate", "DOUBLE", SHARE, "accounts_30plus / accounts." ),
            Column("balance_30d_ago", MONEY, CNY, "Outstanding principal on the latest processed date on or before dt - 30; null before such a date exists."),
            Column("lagged_30plus_rate", "DOUBLE", SHARE, "balance_30plus / balance_30d_ago; null without a date 30 days back."),
            Column("lagged_30plus_account_rate", "DOUBLE", SHARE, "accounts_30plus / the accounts open 30 days earlier; null without a date 30 days back."),
            _run_id(contract=False),
            _dt(contract=False),
        ),
    ),
    Table(
        name="pricing_summary",
        grain="dt x risk_grade; a row for each grade (A to G, STARTER, NO_OFFER) with customers evaluated on dt or loans booked in the 30 days to dt",
        description="Tonight's offered rates by risk grade against the expected loss and costs they must cover, and the loans booked in the last 30 days against the offer in force when each was booked.",
        source="transforms/sql/pricing_summary.sql (policy/pricing.py: pricing_summary, over the warehouse tables limit_decisions, loans and loan_offers), published by steps/limits.py: run_limits",
        partitions=EVERY_DATE + "; none for dates published before pricing",
        columns=(
            Column("risk_grade", "VARCHAR", "", "A to G as in limit_updates; STARTER for customers without a model score (the starter rule); NO_OFFER for loans whose customer had no evaluation before the loan was booked (only the *_30d columns are filled)."),
            Column("customers", "BIGINT", "count", "Customers of the grade evaluated on dt (0 on a row that only has loans)."),
            Column("customers_offered", "BIGINT", "count", "Of them, customers given a limit above 0, and so a rate."),
            Column("mean_pd", "DOUBLE", "probability", "Mean pd of the grade's customers on dt; null for STARTER and NO_OFFER."),
            Column("mean_offered_rate", "DOUBLE", ANNUAL, "Mean offered_annual_rate of the customers offered a limit; null when none was."),
            Column("expected_loss_rate", "DOUBLE", ANNUAL, "Mean expected-loss rate of those customers: lgd x their pd annualised from the model's horizon, 1 - (1 - pd) ^ (365 / pd_horizon_days); null without a model score or without the policy's cost section.", defined_in="policy/pricing.py: expected_loss_rate"),
            Column("funding_rate", "DOUBLE", ANNUAL, "The policy's funding cost (pricing.cost.funding_rate), the same on every row; null without a cost section.", defined_in="policy/config.py: PricingCost"),
            Column("operating_rate", "DOUBLE", ANNUAL, "The policy's operating cost (pricing.cost.operating_rate), the same on every row; null without a cost section.", defined_in="policy/config.py: PricingCost"),
            Column("margin", "DOUBLE", ANNUAL, "mean_offered_rate - expected_loss_rate - funding_rate - operating_rate: what the offers earn above expected loss and costs; null when any of them is null."),
            Column("negative_margin", "BOOLEAN", "", "True when margin < 0: the grade's offers do not cover its expected loss and costs (the cap binds, or the grade table overrides the build-up); false when margin is null."),
            Column("loans_30d", "BIGINT", "count", "Loans booked (delivered) in the 30 days to dt whose offer in force when booked had this grade: the customer's decision of the latest evaluated night before the loan's date, kept when the loan arrived (warehouse table loan_offers)."),
            Column("principal_30d", MONEY, CNY, "Their principal."),
            Column("realised_rate_30d", "DOUBLE", ANNUAL, "Their annual_rate, weighted by principal; null without loans."),
            Column("loans_below_offer_30d", "BIGINT", "count", "Of them, loans booked at an annual_rate below the offered_annual_rate in force (an offer without a rate counts none)."),
            Column("loans_above_cap_30d", "BIGINT", "count", "Of them, loans booked at an annual_rate above the policy's max_annual_rate."),
            _run_id(contract=False),
            _dt(contract=False),
        ),
    ),
    Table(
        name="customer_notices",
        grain="one row per notice (notice_id): customer x notice_type x loan x instalment on dt",
        description="What the messaging system is asked to send after the night: repayment reminders, failed auto-debits, overdue notices and limit changes, each with a stable id, the earliest send time and a template.",
        source="transforms/sql/customer_notices.sql with the send times and templates of policy/notices.py: notice_rows (warehouse table customer_notices; notice_revisions keeps what a rerun added or withdrew), published by steps/customer_notices.py: run_notices",
        partitions=EVERY_DATE + ", empty (0 rows) on a date without notices; none for dates published before notices",
        columns=(
            Column("notice_id", "VARCHAR", "", "Stable id: 32 hex digits of the sha256 of customer, type, loan, instalment and dt, so a rerun of the date gives a notice the same id and a sender can de-duplicate."),
            Column("customer_id", "VARCHAR", "", "The customer to notify; none to a CLOSED customer who owes nothing."),
            Column("notice_type", "VARCHAR", "", "DUE_SOON (an instalment due notices.due_soon_days after dt + 1, the sending day), DUE_TODAY (due on dt + 1), AUTO_DEBIT_FAILED (a failed auto-debit or a reversed repayment delivered on dt), OVERDUE (a loan whose dpd reached one of notices.overdue_dpd), or LIMIT_NEW (above 0 only), LIMIT_INCREASE, LIMIT_DECREASE, LIMIT_FREEZE, LIMIT_CLOSE (FREEZE and CLOSE when the state starts, unless notices.limit_notices = every_decision)."),
            Column("loan_id", "VARCHAR", "", "The loan of a DUE_SOON, DUE_TODAY, AUTO_DEBIT_FAILED or OVERDUE notice; null for LIMIT_*."),
            Column("installment_no", "INTEGER", "", "The instalment due (DUE_*) or the oldest overdue one (OVERDUE); null otherwise."),
            Column("due_date", "DATE", "date", "That instalment's due date (OVERDUE: dt - dpd); null for AUTO_DEBIT_FAILED and LIMIT_*."),
            Column("amount_due", MONEY, CNY, "DUE_*: the instalment's principal and interest not yet paid at the end of dt (the contract's waterfall; above 0); AUTO_DEBIT_FAILED: the failed or reversed amounts of the loan; OVERDUE: the loan's overdue amount; null for LIMIT_*."),
            Column("dpd", "INTEGER", "days", "OVERDUE: the loan's days past due on dt; null otherwise."),
            Column("previous_limit", MONEY, CNY, "LIMIT_*: limit_updates.previous_limit; null otherwise."),
            Column("new_limit", MONEY, CNY, "LIMIT_*: limit_updates.new_limit; null otherwise."),
            Column("offered_annual_rate", "DECIMAL(8,6)", ANNUAL, "LIMIT_*: limit_updates.offered_annual_rate (null for a limit of 0); null otherwise."),
            Column("effective_from", "DATE", "date", "dt + 1: the sending day, and the first day of a LIMIT_* notice's new limit."),
            Column("reasons", "VARCHAR[]", "", "LIMIT_*: limit_updates.reason_codes; an empty list otherwise."),
            Column("send_after", "TIMESTAMP WITH TIME ZONE", "instant (UTC in the file)", "The earliest moment to send: the type's notices.send_at time on dt + 1 in Asia/Shanghai, moved to quiet_end when it falls in the quiet hours.", defined_in="policy/notice_types.py: send_after"),
            Column("template_id", "VARCHAR", "", "The message template: <notice_type>.<notices.template_version> (e.g. DUE_SOON.v1).", defined_in="policy/notices.py: sending"),
            _run_id(contract=False),
            _dt(contract=False),
        ),
    ),
    Table(
        name="data_quality",
        grain="dt x extract x check",
        description="Every validation check of the day's delivery: parse, duplicates, each rule, reconciliation, with rows checked, failed and quarantined.",
        source="steps/ingest.py: _quality_rows, over the rules of transforms/ingest/rules.py (warehouse table data_quality, DDL in creditflow/warehouse.py), published by steps/ingest.py: ingest",
        partitions=EVERY_DATE + "; `creditflow ingest` run by hand publishes its date at once",
        columns=(
            Column("extract", "VARCHAR", "", "customers, behaviour, loans, installments or transactions.", True),
            Column("check", "VARCHAR", "", '<extract>.parse, <extract>.duplicate_row, a rule id (e.g. behaviour.app_minutes.range) or <extract>.reconciliation. A reserved word in SQL: quote it as "check".', True),
            Column("success", "BOOLEAN", "", "True when no row failed the check.", True),
            Column("rows_checked", "BIGINT", "count", "Rows the check looked at.", True),
            Column("rows_failed", "BIGINT", "count", "Rows that failed it.", True),
            Column("rows_quarantined", "BIGINT", "count", "Rows kept out of the warehouse (in quarantine) because of it.", True),
            _run_id(),
            _dt(),
        ),
    ),
    Table(
        name="model_runs",
        grain="one row per training decision (dt = the business date it ran on)",
        description="Each retraining of the credit model: windows, sample size, out-of-time metrics, stability and whether the challenger was promoted.",
        source="models/training.py: train_challenger (a ModelRun), published by steps/retrain.py: publish_model_run (MODEL_RUN_COLUMNS + run_id)",
        partitions="successful nights on which a retrain was due: every night while there is no champion, then weekly or when scores drift",
        columns=(
            Column("model_version", "VARCHAR", "", "The trained challenger (m<date>-<hash>); null when nothing could be fitted (e.g. too little matured history).", True),
            Column("train_start", "DATE", "date", "First observation date of the training window.", True),
            Column("train_end", "DATE", "date", "Last observation date of the training window.", True),
            Column("oot_start", "DATE", "date", "First observation date of the out-of-time test window.", True),
            Column("oot_end", "DATE", "date", "Last observation date of the out-of-time test window.", True),
            Column("n_train", "BIGINT", "count", "Training observations (customer x observation date); 0 when nothing was fitted.", True),
            Column("bad_rate", "DOUBLE", SHARE, "Share of training observations that went bad (dpd ≥ 30 within 90 days).", True),
            Column("auc", "DOUBLE", "0-1", "Out-of-time ROC AUC.", True),
            Column("ks", "DOUBLE", "0-1", "Out-of-time Kolmogorov-Smirnov statistic.", True),
            Column("gini", "DOUBLE", "-1 to 1", "Out-of-time Gini coefficient (2 x AUC - 1).", True),
            Column("brier", "DOUBLE", "0-1", "Out-of-time Brier score (mean squared error of pd).", True),
            Column("psi", "DOUBLE", "index", "Population stability index of out-of-time scores against training scores.", True),
            Column("promoted", "BOOLEAN", "", "Whether the challenger became the champion.", True),
            Column("decision_reason", "VARCHAR", "", "Why it was (not) promoted, or why nothing was trained.", True),
            Column("psi_tonight", "DOUBLE", "index", "Stability of tonight's scores (customers like the training ones) against the training scores."),
            Column("champion_version", "VARCHAR", "", "The champion in force when the challenger was trained; null if none."),
            Column("champion_auc", "DOUBLE", "0-1", "The champion's AUC on the same out-of-time window; null without a comparable champion."),
            _run_id(),
            _dt(meaning="Business date of the run that trained."),
        ),
    ),
    Table(
        name="runs",
        grain="run date x attempt; every attempt of a business date, newest last",
        description="The record of every nightly run attempt: status, timing, code and policy versions, input file checksums, row counts and errors.",
        source="flows/runs.py: RunRecord (warehouse table runs, RUNS_DDL without run_date), published by flows/runs.py: publish_runs",
        partitions="one per business date a run was attempted for, failed ones included",
        columns=(
            Column("run_id", "VARCHAR", "", "Content address of the run (r<date>-<hash> of inputs, versions and the previous run); r<date>-failed when the delivery check failed."),
            Column("attempt", "INTEGER", "count", "1, 2, … per business date; the highest is the latest."),
            Column("flow_run_id", "VARCHAR", "", "The Prefect flow run (a UUID as text), to find its logs and artifacts."),
            Column("trigger", "VARCHAR", "", "schedule, manual, backfill or demo."),
            Column("status", "VARCHAR", "", "RUNNING, SUCCESS or FAILED."),
            Column("started_at", "TIMESTAMP WITH TIME ZONE", "instant (UTC in the file)", "Wall-clock start, for the audit trail only."),
            Column("finished_at", "TIMESTAMP WITH TIME ZONE", "instant (UTC in the file)", "Wall-clock end; null while running."),
            Column("code_version", "VARCHAR", "", "Version of the creditflow code that ran."),
            Column("previous_run_id", "VARCHAR", "", "The latest successful run of the date before, whose state this run built on."),
            Column("load_id", "VARCHAR", "", "Content address of the loaded delivery (date, file checksums, rules version)."),
            Column("input_files", 'STRUCT(file VARCHAR, sha256 VARCHAR, "rows" BIGINT)[]', "", "The delivery's files: path on the pipeline host, sha256 and manifest row count."),
            Column("model_version", "VARCHAR", "", "The champion that scored the limits; null before any model."),
            Column("policy_version", "VARCHAR", "", "Limit policy version and file hash."),
            Column("row_counts", "VARCHAR", "", "JSON text: step → table → rows."),
            Column("durations", "VARCHAR", "", "JSON text: step → seconds."),
            Column("error", "VARCHAR", "", "What failed (step: message); null on success."),
            _dt(contract=False, meaning="The business date the run processed."),
        ),
    ),
)
# fmt: on

TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

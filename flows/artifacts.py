"""What a person opening a night in the Prefect UI sees: a summary and six tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from creditflow.policy.pricing import describe_offers, offered_rates
from creditflow.publish import PART_FILE, partition_dir
from creditflow.settings import Settings
from creditflow.steps.retrain import RetrainOutcome
from creditflow.transforms.ingest.quarantine import QUALITY_COLUMNS, quality_checks
from creditflow.transforms.reports import bucket_mix
from creditflow.warehouse import open_warehouse

if TYPE_CHECKING:
    from creditflow.flows.nightly import NightResult


def publish_artifacts(settings: Settings, night: NightResult) -> None:
    """What a person opening the run in the Prefect UI wants to see."""
    d, key = night.run_date, f"{night.run_date:%Y-%m-%d}"
    retrain: RetrainOutcome = night.steps["retrain"]
    limits, notices = night.steps["limits"], night.steps["notices"]
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        dq = quality_checks(con, d)
        buckets = bucket_mix(con, d)
        rates = offered_rates(con, d)
    # what the night published for pricing, by risk grade (the limits step computed it)
    pricing_file = partition_dir(settings.published_dir, "pricing_summary", d) / PART_FILE
    pricing = pq.read_table(pricing_file).to_pylist() if pricing_file.exists() else []
    model_line = (
        f"trained {retrain.run.model_version}: AUC {retrain.run.auc or float('nan'):.3f}, "
        f"{'promoted' if retrain.run.promoted else 'not promoted'} ({retrain.run.decision_reason})"
        if retrain.run is not None and retrain.run.model_version
        else (retrain.run.decision_reason if retrain.run is not None else "not due")
    )
    create_markdown_artifact(
        key="nightly-summary",
        description=f"creditflow nightly {key}",
        markdown="\n".join(
            [
                f"# creditflow nightly {key}",
                f"- run id `{night.run_id}`",
                f"- ingest: {night.steps['ingest']['status']}; rows loaded "
                f"{sum(night.steps['ingest']['rows_loaded'].values()):,}, quarantined "
                f"{sum(night.steps['ingest']['rows_quarantined'].values()):,}",
                f"- ledger: {night.steps['ledger']['active_loans']:,} active loans",
                f"- retrain: {retrain.due_reason}; {model_line}",
                f"- limits: {limits['customers']:,} customers, model "
                f"{limits['model_version'] or 'none (starter rule)'}",
                f"- pricing: {describe_offers(rates)}",
                f"- notices: {notices['notices']:,}"
                + (
                    f"; this rerun added {notices['added']:,}, withdrew {notices['withdrawn']:,} "
                    f"and changed {notices['changed']:,}"
                    if notices["rerun"]
                    else ""
                ),
                f"- later dates whose inputs changed: {', '.join(map(str, night.later_dates_changed)) or 'none'}",
                "",
                "| step | seconds |",
                "|---|---|",
                *[f"| {k} | {v:.2f} |" for k, v in night.durations.items()],
            ]
        ),
    )
    create_table_artifact(
        key="data-quality",
        table=[dict(zip(QUALITY_COLUMNS, r, strict=True)) for r in dq],
        description=f"data quality checks {key}",
    )
    create_table_artifact(
        key="limit-actions",
        table=[{"action": a, "customers": n} for a, n in limits["actions"].items()],
        description=f"limit action mix {key}",
    )
    create_table_artifact(
        key="pricing-summary",
        table=[_pricing_row(r) for r in pricing],
        description=f"offered rates against expected loss and costs, by risk grade {key}",
    )
    create_table_artifact(
        key="notice-mix",
        table=[{"notice_type": t, "notices": n} for t, n in notices["by_type"].items()],
        description=f"customer notices by type {key}",
    )
    create_table_artifact(
        key="delinquency-buckets",
        table=[
            {"bucket": b, "accounts": n, "balance": str(bal), "share": f"{share:.1%}"}
            for b, n, bal, share in buckets
        ],
        description=f"delinquency buckets {key}",
    )


def _pct(rate: object) -> str:
    return "" if rate is None else f"{float(rate):.2%}"  # type: ignore[arg-type]


def _pricing_row(r: dict) -> dict[str, object]:
    """A pricing_summary row as the UI shows it: rates as percentages."""
    return {
        "grade": r["risk_grade"],
        "customers": r["customers"],
        "offered": r["customers_offered"],
        "mean pd": _pct(r["mean_pd"]),
        "mean offered rate": _pct(r["mean_offered_rate"]),
        "expected loss": _pct(r["expected_loss_rate"]),
        "margin": _pct(r["margin"]),
        "negative margin": r["negative_margin"],
        "loans 30d": r["loans_30d"],
        "principal 30d": str(r["principal_30d"]),
        "realised rate 30d": _pct(r["realised_rate_30d"]),
        "below offer 30d": r["loans_below_offer_30d"],
        "above cap 30d": r["loans_above_cap_30d"],
    }

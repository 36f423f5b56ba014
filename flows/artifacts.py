"""What a person opening a night in the Prefect UI sees: a summary and four tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.artifacts import create_markdown_artifact, create_table_artifact

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
    limits = night.steps["limits"]
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        dq = quality_checks(con, d)
        buckets = bucket_mix(con, d)
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
        key="delinquency-buckets",
        table=[
            {"bucket": b, "accounts": n, "balance": str(bal), "share": f"{share:.1%}"}
            for b, n, bal, share in buckets
        ],
        description=f"delinquency buckets {key}",
    )

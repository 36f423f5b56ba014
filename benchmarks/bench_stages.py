"""One benchmark measurement, in a process of its own: each stage of a night next to the bare
engine doing the irreducible part of the same work, or the whole nightly flow.

    python -m benchmarks.bench_stages stages|night HOME DATE OUT.json [--retrain]

``stages`` calls the same functions the nightly flow's tasks call, in the flow's order, on a
warehouse that is a fresh copy of the book's snapshot. Each figure is wall seconds and the
process's peak resident memory during that stage alone (VmHWM, reset before each stage
through /proc/self/clear_refs). The bare counterparts:

- ingest: ``create table .. as select * from read_csv(..)`` of every file of the delivery
  into a DuckDB file with the contract's types (no checks, no quarantine, no bookkeeping);
- ledger: one scan of the ledger's inputs (the previous state, the schedules of the active
  loans, the day's money movements) and of what its reports read (today's and 30-days-ago
  states), and one write of a state as large as the previous one;
- features: one scan of every window the features read, aggregated by customer;
- limits: none (the policy's rules have no bare twin); the scan of its inputs is recorded;
- pricing and notices: none either; the figure is what they add to the night (pricing the
  decisions, the pricing summary, the notices computed and stored);
- scoring: ``booster.predict`` on the same matrix plus exact contributions
  (``pred_contribs``) for the rows that get model reason codes;
- publication: ``COPY (..) TO .. (FORMAT parquet, COMPRESSION zstd)`` of the same rows;
- training: ``xgboost.train`` with the recipe's parameters for as many rounds as the fit ran,
  on the same training matrix, without the validation watch, early stopping or calibration.

``night`` runs the nightly Prefect flow itself (after a warm-up flow has started the
ephemeral API) and reports its wall time, peak memory, the per-step durations the run
recorded and the time spent around the steps (delivery check, run record, publication
swaps, BI catalog, run report, artifacts); Prefect's overhead is what remains.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start this process's peak-RSS counter again from its current RSS (Linux >= 4.0)."""
    with contextlib.suppress(OSError):  # not Linux: peaks then run from process start
        Path("/proc/self/clear_refs").write_text("5")


@dataclass
class Figure:
    stage: str
    seconds: float
    rows: int
    peak_mib: float
    bare_seconds: float | None = None
    bare_peak_mib: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    reset_peak()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, peak_mib()


def _bare_ingest(home: Path, d: date) -> int:
    import duckdb

    from creditflow.contract import EXTRACTS

    folder = home / "landing" / f"dt={d}"
    target = home / "bare-ingest.duckdb"
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    rows = 0
    for extract in EXTRACTS:
        path = folder / extract.file_name("csv")
        con.execute(
            f"create table {extract.name} as select * from read_csv($p, header = true, "
            "columns = $c, auto_detect = false, hive_partitioning = false)",
            {"p": str(path), "c": {c.name: c.kind.duckdb for c in extract.columns}},
        )
        rows += int(con.execute(f"select count(*) from {extract.name}").fetchall()[0][0])
    con.execute("checkpoint")
    con.close()
    target.unlink()
    return rows


# The bare scans: every row the stage must read, aggregated so DuckDB cannot skip columns
# the stage uses. Parameters: $d the business date, $p the previous processed date.
BARE_LEDGER = [
    "select count(*), sum(outstanding_principal), sum(paid_total), max(dpd) from loan_daily where dt = $p",
    "select count(*), sum(amount) from transactions where dt = $d",
    "select count(*), sum(amount) from repayments where dt = $d",
    "select count(*), sum(principal) from loans where dt = $d",
    # every active loan's position follows from its whole schedule (ledger_state.sql)
    "select count(*), sum(principal_due + interest_due), sum(cum_before) from schedule "
    "where loan_id in (select loan_id from loan_daily where dt = $p)",
    "select count(*), sum(outstanding_principal) from loan_daily where dt = $d - 30",
    "select origination_month, count(*), sum(principal), max(max_dpd) from loan_daily where dt = $p group by all",
    # the new state has to be written: a copy of the previous one is its bare cost
    "create or replace temp table bench_state as select * from loan_daily where dt = $p",
]
BARE_FEATURES = [
    "select count(*) from customer_versions where valid_from <= $d and (valid_to is null or valid_to > $d)",
    "select customer_id, count(*), sum(app_minutes), sum(app_sessions), sum(payments_count), "
    "sum(payments_amount), sum(transfers_in_amount), sum(transfers_out_amount), sum(red_packets_sent), "
    "sum(red_packets_received), sum(contacts_added), sum(device_changed::INT), avg(night_activity_share), "
    "avg(wallet_balance), min(business_date) from behaviour where dt <= $d and business_date > $d - 90 "
    "and business_date <= $d group by customer_id",
    "select customer_id, max(dpd), count(*) from loan_daily where dt > $d - 180 and dt <= $d "
    "and outstanding_principal > 0 group by customer_id",
    "select customer_id, count(*), sum(principal), min(dt) from loans where dt <= $d group by customer_id",
    "select customer_id, count(*) from transactions where dt <= $d and dt > $d - 90 "
    "and txn_type in ('REPAYMENT', 'REVERSAL') group by customer_id, txn_type, status",
]
BARE_LIMITS = [
    "select count(*), sum(declared_monthly_income) from customer_versions where valid_from <= $d "
    "and (valid_to is null or valid_to > $d)",
    "select customer_id, max(dpd), sum(outstanding_principal) from loan_daily where dt = $d group by customer_id",
    "select count(*), sum(new_limit) from limit_decisions where dt = $p",
]


def _bare_scan(con: Any, queries: list[str], d: date, prev: date) -> None:
    for q in queries:
        params = {k: v for k, v in (("d", d), ("p", prev)) if f"${k}" in q}
        if q.startswith("create"):
            con.execute(q, params)
        else:
            con.execute(f"select count(*) from ({q})", params).fetchall()


def stages(home: Path, d: date, retrain: bool) -> list[Figure]:
    import numpy as np
    import polars as pl
    import xgboost as xgb

    from benchmarks.bench_lending import lending
    from creditflow.models.champion import Champion
    from creditflow.models.dataset import population
    from creditflow.models.registry import Registry
    from creditflow.models.scoring import reason_codes, reference_contributions, score_population
    from creditflow.policy.config import load_policy
    from creditflow.policy.decisions import ADVERSE, MODEL_RULES, evaluate_limits, limit_updates
    from creditflow.publish import publish_partition
    from creditflow.settings import Settings
    from creditflow.steps.ingest import ingest
    from creditflow.transforms.ledger import ensure_ledger_schema, ledger_step
    from creditflow.transforms.reports import REPORTS, report
    from creditflow.warehouse import open_warehouse

    settings = Settings(home=home, data_docs=False)
    run_id = f"bench-{d}"
    out: list[Figure] = []

    res, s, m = timed(lambda: ingest(settings, d, run_id=run_id, data_docs=False))
    assert res.status == "LOADED", res
    loaded = sum(res.rows_loaded.values())
    f = Figure("ingest and validate", s, loaded, m, detail={"rows_loaded": res.rows_loaded})
    _, f.bare_seconds, f.bare_peak_mib = timed(lambda: _bare_ingest(home, d))
    out.append(f)

    policy = load_policy(settings.policy_file)
    registry = Registry(settings.models_dir)
    champion = Champion.load(registry, d)
    assert champion is not None, "the benchmark book has no champion: build it with more nights"
    with open_warehouse(settings.warehouse_path) as con:
        prev = con.execute("select max(dt) from ledger_runs where dt < $d", {"d": d}).fetchall()[0][
            0
        ]

        def ledger() -> int:
            ensure_ledger_schema(con)
            result = ledger_step(con, d, run_id=run_id)
            for name in REPORTS:  # computed here, written under publication below
                report(con, name, d, run_id).create_view("bench_view", replace=True)
                con.execute(
                    f"create or replace temp table bench_{name} as select * from bench_view"
                )
            return result.active_loans

        loans, s, m = timed(ledger)
        f = Figure("ledger and reports", s, loans, m)
        _, f.bare_seconds, f.bare_peak_mib = timed(lambda: _bare_scan(con, BARE_LEDGER, d, prev))
        out.append(f)

        frame, s, m = timed(lambda: population(con, d))
        f = Figure("features", s, len(frame.customer_id), m, detail={"features": len(frame.names)})
        _, f.bare_seconds, f.bare_peak_mib = timed(lambda: _bare_scan(con, BARE_FEATURES, d, prev))
        out.append(f)

        if retrain:
            out.extend(_training(con, d, registry, settings))

        (decided, result), s, m = timed(
            lambda: evaluate_limits(con, d, policy, champion, run_id, frame)
        )
        f = Figure(
            "limits (scores, policy, reasons, store)", s, result.customers, m,
            detail={"actions": result.actions, "reasons_computed": result.reasons_computed},
        )  # fmt: skip
        # the policy's rules have no bare-engine twin; the scan of its inputs is shown for scale
        _, scan, _ = timed(lambda: _bare_scan(con, BARE_LIMITS, d, prev))
        f.detail["input_scan_seconds"] = scan
        out.append(f)

        # what pricing and notices add to a night (benchmarks/bench_lending.py)
        out.append(lending(con, d, policy, decided, run_id))

        # the scoring part of that step alone: pd for everyone, reason codes for the
        # model-driven adverse rows, exactly as evaluate_limits chooses them
        wanted = decided.filter(
            pl.col("action").is_in(ADVERSE)
            & pl.col("pd").is_not_null()
            & pl.col("policy_rule").is_in(MODEL_RULES)
        )["customer_id"]
        index = {c: i for i, c in enumerate(frame.customer_id.astype(str))}
        rows = np.array([index[c] for c in wanted], dtype=np.int64)

        def scoring() -> int:
            scores = score_population(con, d, champion.booster, champion.names, frame)
            reference = reference_contributions(
                champion.booster, frame.x, champion.names, scores["pd"].to_numpy()
            )
            reason_codes(champion.booster, frame.x[rows], champion.names, reference=reference)
            return scores.height

        def bare_scoring() -> None:
            champion.booster.predict(xgb.DMatrix(frame.x, feature_names=champion.names))
            if len(rows):
                champion.booster.predict(
                    xgb.DMatrix(frame.x[rows], feature_names=champion.names), pred_contribs=True
                )

        n, s, m = timed(scoring)
        f = Figure("scoring with reason codes", s, n, m, detail={"reason_code_rows": len(rows)})
        _, f.bare_seconds, f.bare_peak_mib = timed(bare_scoring)
        out.append(f)

        relations = {name: f"select * exclude (dt) from bench_{name}" for name in REPORTS}
        limit_updates(con, d).create_view("bench_view", replace=True)
        con.execute("create or replace temp table bench_limit_updates as select * from bench_view")
        relations["limit_updates"] = "select * from bench_limit_updates"
        relations["pricing_summary"] = "select * from bench_pricing_summary"
        relations["customer_notices"] = "select * from bench_customer_notices"

        def publish() -> int:
            n = 0
            for name, q in relations.items():
                n += publish_partition(con.sql(q), settings.published_dir, name, d).rows
            return n

        def bare_publish() -> None:
            target = home / "bare-copy"
            target.mkdir(exist_ok=True)
            for name, q in relations.items():
                con.execute(
                    f"copy ({q}) to '{target / name}.parquet' (format parquet, compression zstd)"
                )

        n, s, m = timed(publish)
        f = Figure("publication", s, n, m, detail={"tables": len(relations)})
        _, f.bare_seconds, f.bare_peak_mib = timed(bare_publish)
        out.append(f)
    return out


def _training(con: Any, d: date, registry: Any, settings: Any) -> list[Figure]:
    import xgboost as xgb

    from creditflow.models.dataset import encode, labelled
    from creditflow.models.recipe import Recipe, fit
    from creditflow.models.training import OOT_DATES, matured_observation_dates, train_challenger
    from creditflow.steps.retrain import gate_from

    run, s, m = timed(lambda: train_challenger(con, d, registry, gate=gate_from(settings)))
    step = Figure(
        "training (whole step)", s, int(run.n_train or 0), m,
        detail={"auc": run.auc, "promoted": run.promoted, "model_version": run.model_version},
    )  # fmt: skip
    # the fit alone against bare xgboost.train on the same matrix
    dates = matured_observation_dates(con)
    table = labelled(con, dates)
    train = encode(table.filter(table["observation_date"] < dates[-OOT_DATES]))
    assert train.y is not None
    recipe = Recipe()
    (_, info), s, m = timed(
        lambda: fit(recipe, train.x, train.y, train.names, train.monotone, groups=train.customer_id)
    )
    f = Figure("training (fit)", s, len(train.y), m, detail={"rounds": info["best_iteration"]})
    rounds = min(recipe.rounds, int(info["best_iteration"]) + recipe.early_stopping)
    constraints = tuple(int(train.monotone.get(n, 0)) for n in train.names)
    params = {
        **recipe.params,
        "seed": recipe.seed,
        "nthread": recipe.threads,
        "monotone_constraints": "(" + ",".join(map(str, constraints)) + ")",
    }

    def bare() -> None:
        xgb.train(params, xgb.DMatrix(train.x, label=train.y), num_boost_round=rounds)

    _, f.bare_seconds, f.bare_peak_mib = timed(bare)
    f.detail["bare_rounds"] = rounds
    return [step, f]


# What a night does outside its five steps, by the module-level names the flow calls them by:
# the delivery check, the run record, the publication swaps, the BI catalog, the run report
# and the Prefect artifacts. Timed by wrapping them, so the flow's code stays as it is.
AROUND_STEPS = {
    "creditflow.flows.nightly": ("open_delivery", "_begin", "_end", "refresh_catalog", "write_report", "_artifacts"),
    "creditflow.publish": ("_swap", "clear_staging"),
}  # fmt: skip


def _instrument(sink: dict[str, float]) -> None:
    import importlib

    for module_name, names in AROUND_STEPS.items():
        module = importlib.import_module(module_name)
        for name in names:
            original = getattr(module, name, None)
            if original is None:
                continue

            def wrapper(*a: Any, _f: Any = original, _n: str = name, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return _f(*a, **k)
                finally:
                    sink[_n] = sink.get(_n, 0.0) + time.perf_counter() - t0

            setattr(module, name, wrapper)


def night(home: Path, d: date, retrain: bool, execution: str | None = None) -> dict[str, Any]:
    from prefect import flow

    from creditflow.flows.nightly import nightly

    around: dict[str, float] = {}
    _instrument(around)

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    t0 = time.perf_counter()
    warm_up()
    startup = time.perf_counter() - t0
    overrides: dict[str, Any] = {"home": str(home), "data_docs": False}
    # "without retrain": the weekly retrain is not due and drift would have to be extreme;
    # "with retrain": due every night
    overrides["retrain_every_days"] = 1 if retrain else 10_000
    overrides["retrain_psi"] = 0.25 if retrain else 1e9
    overrides["execution"] = execution or "local"
    from creditflow.execution.cluster import cluster
    from creditflow.settings import load_settings

    # a cluster is started before the clock starts, as a backfill or a long-lived cluster
    # would have it; its start-up is reported on its own
    settings = load_settings(**overrides)
    t0 = time.perf_counter()
    warm_store = _warm_shard_store(settings, d) if settings.execution != "local" else 0.0
    with cluster(settings):
        cluster_startup = time.perf_counter() - t0 - warm_store
        reset_peak()
        t0 = time.perf_counter()
        result = nightly(run_date=d, overrides=overrides, trigger="bench", data_docs=False)
        wall = time.perf_counter() - t0
    durations = result["durations"]
    return {
        "retrain": retrain,
        "seconds": wall,
        "peak_mib": peak_mib(),
        "prefect_startup_seconds": startup,
        "cluster_startup_seconds": cluster_startup,
        "shard_store_warm_up_seconds": warm_store,
        "steps": durations,
        "around_steps": around,
        # what is left is Prefect's: flow and task runs, states, logs, the API calls
        "overhead_seconds": wall - sum(durations.values()) - sum(around.values()),
        "run_id": result["run_id"],
        "model_version": result.get("model_version"),
    }


def _warm_shard_store(settings: Any, d: date) -> float:
    """Bring the shard store up to the night before, as the previous nights on the cluster
    would have left it: a measured night then copies only its own date into the store (a
    first night on an empty store copies the whole 180-day window, once)."""
    from datetime import timedelta

    from creditflow.execution.shard_store import sync
    from creditflow.transforms.features import FEATURES
    from creditflow.transforms.ledger import ensure_ledger_schema
    from creditflow.warehouse import open_warehouse

    t0 = time.perf_counter()
    with open_warehouse(settings.warehouse_path) as con:
        ensure_ledger_schema(con)  # a book built before the ledger recorded state versions
        sync(
            con,
            settings.shard_dir / "store",
            d - timedelta(days=1),
            settings.shards,
            FEATURES.dated,
        )
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    what, home, d, out = argv[0], Path(argv[1]), date.fromisoformat(argv[2]), Path(argv[3])
    retrain = "--retrain" in argv
    execution = next((a.split("=", 1)[1] for a in argv if a.startswith("--execution=")), None)
    if what == "stages":
        payload: Any = [asdict(f) for f in stages(home, d, retrain)]
    elif what == "night":
        payload = night(home, d, retrain, execution)
    else:
        raise SystemExit(f"unknown measurement {what!r}")
    out.write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])

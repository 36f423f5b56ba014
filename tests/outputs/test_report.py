"""The run report: one self-contained HTML file per date, from the published Parquet.

Rendered for a 14-night book without a champion, with a real (small) champion, from an empty
published area, and in headless Chromium (installed from Debian when missing), which must
load it offline without console errors and show every chart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
import xgboost as xgb

from creditflow.models.metrics import deciles, discrimination, roc_points
from creditflow.models.registry import Registry
from creditflow.outputs.report import FIGURE_IDS, REPORTS_DIR, write_report
from creditflow.policy.config import load_policy
from creditflow.policy.notice_types import NOTICE_TYPES
from creditflow.settings import Settings, load_settings

LAST = date(2026, 3, 14)  # the last night of the published_book fixture
SECTIONS = (
    "run",
    "delinquency",
    "model",
    "limits",
    "pricing",
    "notices",
    "data-quality",
    "training",
)
NEW_TABLES = ("pricing_summary", "customer_notices")  # published since pricing and notices
CHROMIUM = Path("/usr/bin/chromium")
DEMO_SCREENSHOT = Path("/tmp/report_demo.png")

# the tests sharing the published_book fixture run on one worker, so it is built once
book = pytest.mark.xdist_group("published_book")


def figure_html(page: str, fig_id: str) -> str:
    """The ``<figure>`` element with this id (figures do not nest)."""
    match = re.search(rf'<figure id="{fig_id}">(.*?)</figure>', page, re.S)
    assert match, f"no figure {fig_id}"
    return match.group(1)


def assert_self_contained(page: str) -> None:
    """No remote reference at all: SVG namespace names are identifiers, not fetched, so they
    are the only URLs allowed, and they are removed before looking."""
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "@import" not in page and "url(http" not in page
    without_ns = re.sub(r'xmlns(?::\w+)?="[^"]*"', "", page)
    assert "http://" not in without_ns and "https://" not in without_ns
    assert "<script" not in page.lower()


# --- without a champion -------------------------------------------------------------------------


@book
def test_report_without_champion_is_self_contained_and_says_starter_rule(
    published_book: Settings,
) -> None:
    path = write_report(published_book, LAST)
    assert path == published_book.published_dir / REPORTS_DIR / "report-2026-03-14.html"
    assert path.is_file()
    assert not list(path.parent.glob(".tmp-*")), "the temporary file was left behind"
    # BI globs over <table>/dt=*/*.parquet never see the report folder
    assert path not in published_book.published_dir.glob("*/dt=*/*")
    page = path.read_text(encoding="utf-8")

    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page and f'href="#{sid}"' in page
    for fig_id in FIGURE_IDS:
        assert f'<figure id="{fig_id}">' in page
    charts = (
        "fig-buckets",
        "fig-rates",
        "fig-vintage",
        "fig-actions",
        "fig-limits",
        "fig-limit-trend",
        "fig-pricing",
        "fig-notices",
    )
    for fig_id in charts:
        assert "<svg" in figure_html(page, fig_id), fig_id
    assert "could not be" not in page, "a chart or table failed to render"
    assert_self_contained(page)
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page

    # the header names the date and the run; 14 nights give no roll rates and no lagged rate
    assert "creditflow report 2026-03-14" in page
    assert re.search(r"run r20260314-[0-9a-f]{12} \(attempt 1, SUCCESS\)", page)
    assert "Every published table for 2026-03-14 carries run id r20260314-" in page
    assert "no roll rates yet: needs 30 days of history" in page
    assert "no lagged rate yet: needs 30 days of history" in page
    assert "30+ rate " in page and "of balance" in page
    # before any model: no scores, starter limits, and the model section says why
    assert "no champion yet: limits follow the policy&#x27;s starter rule" in page
    assert "limits follow the policy&#x27;s starter rule" in figure_html(page, "fig-scores")
    assert "every limit follows the starter rule" in figure_html(page, "fig-limits")
    assert re.search(r"\d+ checks on 2026-03-14: \d+ failed", page)
    # pricing before any model: the starter rate for everyone offered a limit, no margin yet
    pricing = figure_html(page, "fig-pricing")
    starter = load_policy(published_book.policy_file).pricing.starter_rate
    mean = re.escape(f"mean {starter:.2%} (pricing.starter ")
    assert re.search(rf"[\d,]+ of [\d,]+ customers offered a rate, {mean}[\d,]+\)", pricing)
    assert "no margin: no expected loss without a model score" in pricing
    assert "no offer reached the cap" in pricing and "negative margin" not in pricing
    assert "<h3>Pricing by grade on the date</h3>" in pricing and "<td>STARTER</td>" in pricing
    # notices: the first night announces every first limit; the table has every type
    notices = figure_html(page, "fig-notices")
    assert re.search(r"[\d,]+ notices for 2026-03-14", notices)
    assert "(14 nights, 2026-03-01 to 2026-03-14; most on 2026-03-01: " in notices
    assert "<h3>Notices for 2026-03-14 by type</h3>" in notices
    for kind in NOTICE_TYPES:
        assert f"<td>{kind}</td>" in notices, kind

    # the same inputs give the same bytes (no clock, fixed SVG ids)
    assert write_report(published_book, LAST).read_bytes() == page.encode("utf-8")


@book
def test_report_of_an_earlier_date_reads_nothing_after_it(published_book: Settings) -> None:
    page = write_report(published_book, date(2026, 3, 7)).read_text(encoding="utf-8")
    assert "(7 nights, 2026-03-01 to 2026-03-07)" in page
    later = [f"2026-03-{day:02d}" for day in range(8, 15)] + [
        f"r202603{d:02d}" for d in range(8, 15)
    ]
    assert not [s for s in later if s in page]


def test_report_of_an_empty_published_area_shows_notes(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    page = write_report(settings, LAST).read_text(encoding="utf-8")
    for fig_id in FIGURE_IDS:
        assert "<svg" not in figure_html(page, fig_id)
    assert "no published delinquency_summary table yet" in page
    assert "no published limit_updates table yet" in page
    assert "no published data_quality table yet" in page
    assert "no published pricing_summary table yet" in page
    assert "no published customer_notices table yet" in page
    assert "no run record for 2026-03-14" in page
    assert "could not be" not in page


def test_failed_checks_are_highlighted_and_later_dates_ignored(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    for day, failing in ((LAST, "loans.principal.range"), (date(2026, 3, 15), "loans.later")):
        part = settings.published_dir / "data_quality" / f"dt={day}" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        duckdb.sql(
            f"""select * from (values
                    ('loans', 'loans.parse', true, 120, 0, 0, 'r1'),
                    ('loans', '{failing}', false, 120, 7, 7, 'r1'))
                as t(extract, "check", success, rows_checked, rows_failed, rows_quarantined, run_id)"""
        ).write_parquet(str(part))
    page = write_report(settings, LAST).read_text(encoding="utf-8")
    assert "2 checks on 2026-03-14: 1 failed" in page
    assert "most rows quarantined by loans.principal.range (7 of 120)" in page
    failed = re.search(r"<h3>Failed checks</h3>(.*?)</table>", page, re.S)
    assert failed and '<tr class="fail"><td>loans</td><td>loans.principal.range</td>' in failed[1]
    assert "loans.later" not in page


def test_pricing_flags_grades_whose_offers_do_not_cover_their_losses(tmp_path: Path) -> None:
    """A scored book (hand-made partitions): grade C covers its costs, G is capped below its
    expected loss; the chart and the table flag G, and the cap comes from the capped offers."""
    settings = load_settings(home=tmp_path / "home")
    parts = {
        "pricing_summary": """select * from (values
            ('C', 10::BIGINT, 8::BIGINT, 0.03, 0.165, 0.095, 0.03, 0.025, 0.015, false,
             4::BIGINT, 1000.00::DECIMAL(18,2), 0.15, 1::BIGINT, 0::BIGINT, 'r1'),
            ('G', 3::BIGINT, 2::BIGINT, 0.6, 0.24, 0.7, 0.03, 0.025, -0.515, true,
             0::BIGINT, 0.00::DECIMAL(18,2), null, 0::BIGINT, 0::BIGINT, 'r1'))
            as t(risk_grade, customers, customers_offered, mean_pd, mean_offered_rate,
                 expected_loss_rate, funding_rate, operating_rate, margin, negative_margin,
                 loans_30d, principal_30d, realised_rate_30d, loans_below_offer_30d,
                 loans_above_cap_30d, run_id)""",
        "limit_updates": """select * from (values
            ('C1', 'm1', 0.03, 640, 'C', null, 1000.00::DECIMAL(18,2), 'NEW', 'band',
             0.165::DECIMAL(8,6), 'pricing.cost', 'r1'),
            ('G1', 'm1', 0.6, 520, 'G', null, 500.00::DECIMAL(18,2), 'NEW', 'band',
             0.24::DECIMAL(8,6), 'pricing.cap', 'r1'))
            as t(customer_id, model_version, pd, score, risk_grade, previous_limit, new_limit,
                 action, policy_rule, offered_annual_rate, pricing_rule, run_id)""",
    }
    for table, query in parts.items():
        part = settings.published_dir / table / f"dt={LAST}" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        duckdb.sql(query).write_parquet(str(part))
    page = write_report(settings, LAST).read_text(encoding="utf-8")
    pricing = figure_html(page, "fig-pricing")
    assert "<svg" in pricing
    assert "On 2026-03-14: 10 of 13 customers offered a rate, mean 18.00%" in pricing
    assert "(pricing.cap 1, pricing.cost 1); negative margin in G; 4 loans booked" in pricing
    assert (
        "at a realised 15.00% (by principal): 1 below the offer in force, 0 above the cap"
        in pricing
    )
    assert '<tr class="fail"><td>G</td>' in pricing and "<td>negative margin</td>" in pricing
    assert '<tr><td>C</td><td class="num">10</td>' in pricing and "+1.50%" in pricing
    assert "cap 24.00% (max_annual_rate" in pricing  # the legend, kept as text in the SVG
    assert "could not be" not in page


@book
def test_report_on_a_home_from_before_pricing_and_notices(
    published_book: Settings, tmp_path: Path
) -> None:
    """A published area written before pricing and notices (no pricing_summary or
    customer_notices, limit_updates without the offer) renders with notes in their place;
    once the last date is rerun with the new code (what the demo home looks like), that date
    gets the charts and an earlier date still says there is nothing for it."""
    published = tmp_path / "published"
    shutil.copytree(
        published_book.published_dir,
        published,
        ignore=shutil.ignore_patterns(REPORTS_DIR, *NEW_TABLES),
    )
    settings = published_book.model_copy(update={"published": published})
    for part in sorted((published / "limit_updates").glob("dt=*/*.parquet")):
        old = duckdb.sql(
            f"select * exclude (offered_annual_rate, pricing_rule) from read_parquet('{part}')"
        )
        old.write_parquet(str(part.with_name("old.parquet")), compression="zstd")
        part.with_name("old.parquet").replace(part)

    page = write_report(settings, LAST).read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page and f'href="#{sid}"' in page
    pricing, notices = figure_html(page, "fig-pricing"), figure_html(page, "fig-notices")
    assert "<svg" not in pricing and "no published pricing_summary table yet" in pricing
    assert "<svg" not in notices and "no published customer_notices table yet" in notices
    for fig_id in ("fig-buckets", "fig-actions", "fig-limits", "fig-limit-trend"):
        assert "<svg" in figure_html(page, fig_id), fig_id
    assert "could not be" not in page
    assert "Every published table for 2026-03-14 carries run id r20260314-" in page

    # the last date rerun with the new code: its partitions of every table
    for table in (*NEW_TABLES, "limit_updates"):
        day = f"dt={LAST.isoformat()}"
        shutil.copytree(
            published_book.published_dir / table / day, published / table / day, dirs_exist_ok=True
        )
    page = write_report(settings, LAST).read_text(encoding="utf-8")
    pricing, notices = figure_html(page, "fig-pricing"), figure_html(page, "fig-notices")
    assert "<svg" in pricing and "(pricing.starter " in pricing
    # the fixture's last night has no notice: an empty partition, not a missing one
    assert "<svg" not in notices and "no notices in 1 night, 2026-03-14" in notices
    assert '<td>LIMIT_NEW</td><td class="num">0</td>' in notices
    assert "could not be" not in page
    assert "Every published table for 2026-03-14 carries run id r20260314-" in page

    earlier = write_report(settings, date(2026, 3, 13)).read_text(encoding="utf-8")
    pricing, notices = figure_html(earlier, "fig-pricing"), figure_html(earlier, "fig-notices")
    assert "<svg" not in pricing and "no pricing_summary partition for 2026-03-13" in pricing
    assert "<svg" not in notices and "no customer_notices partition up to 2026-03-13" in notices
    assert "no customer_notices partition for 2026-03-13" in notices  # the counts table's note
    assert "could not be" not in earlier


# --- with a champion ---------------------------------------------------------------------------


def small_model(seed: int = 5) -> tuple[xgb.Booster, dict]:
    """A real booster on synthetic data and a real card from held-out rows (what training does)."""
    rng = np.random.default_rng(seed)
    names = ["dpd_now", "wallet_avg_30", "loans_90"]
    x = rng.normal(size=(6000, 3))
    margin = -2.6 + 1.1 * x[:, 0] - 0.7 * x[:, 1] + 0.3 * x[:, 2]
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-margin))).astype(int)
    fit, held = slice(0, 4000), slice(4000, None)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "nthread": 1, "seed": seed},
        xgb.DMatrix(x[fit], label=y[fit], feature_names=names),
        num_boost_round=30,
    )
    pd_ = booster.predict(xgb.DMatrix(x[held], feature_names=names))
    card = {
        "version": "m20260301-test",
        "trained_as_of": "2026-03-01",
        "features": {"names": names, "monotone": {}},
        "windows": {
            "train_start": "2025-10-01",
            "train_end": "2025-12-31",
            "oot_start": "2026-01-01",
            "oot_end": "2026-01-31",
        },
        "n_train": 4000,
        "n_oot": 2000,
        "metrics": discrimination(y[held], pd_).as_dict(),
        "calibration": deciles(y[held], pd_),
        "roc": roc_points(y[held], pd_),
        "importance_gain": {
            k: float(v) for k, v in booster.get_score(importance_type="gain").items()
        },
    }
    return booster, card


@pytest.fixture(scope="module")
def with_champion(
    published_book: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, dict]:
    """The book's published area (a copy: these reports must not overwrite the others) and a
    fresh registry whose champion is a small real model."""
    root = tmp_path_factory.mktemp("report_champion")
    published = root / "published"
    shutil.copytree(
        published_book.published_dir, published, ignore=shutil.ignore_patterns(REPORTS_DIR)
    )
    settings = published_book.model_copy(update={"published": published, "models": root / "models"})
    booster, card = small_model()
    registry = Registry(settings.models_dir)
    registry.save(card["version"], booster, card)
    registry.promote(card["version"], "test: hand-promoted")
    return settings, card


@book
def test_report_with_champion_shows_roc_ks_and_calibration(
    with_champion: tuple[Settings, dict],
) -> None:
    settings, card = with_champion
    page = write_report(settings, LAST).read_text(encoding="utf-8")
    assert "champion m20260301-test" in page
    roc, calibration = figure_html(page, "fig-roc"), figure_html(page, "fig-calibration")
    assert "<svg" in roc and "<svg" in calibration
    auc, ks = card["metrics"]["auc"], card["metrics"]["ks"]
    assert 0.6 < auc < 0.95
    assert f"AUC {auc:.3f}, KS {ks:.3f}" in roc
    assert "2026-01-01 to 2026-01-31" in roc
    assert "Mean predicted PD" in calibration
    assert "Top features by gain" in page and "dpd_now" in page
    # the published limits were set before this model existed: the report says so
    assert "limits follow the policy&#x27;s starter rule" in figure_html(page, "fig-scores")
    assert "could not be" not in page
    assert_self_contained(page)


@book
def test_report_names_what_a_hand_made_card_lacks(
    with_champion: tuple[Settings, dict], tmp_path: Path
) -> None:
    settings, _ = with_champion
    settings = settings.model_copy(update={"models": tmp_path / "models"})
    booster, card = small_model(seed=9)
    bare = {"version": "m-hand", "metrics": {"auc": card["metrics"]["auc"]}}
    registry = Registry(settings.models_dir)
    registry.save("m-hand", booster, bare)
    registry.promote("m-hand", "promoted by hand")
    page = write_report(settings, LAST).read_text(encoding="utf-8")
    assert "the model card of m-hand has no roc" in figure_html(page, "fig-roc")
    assert f"AUC {card['metrics']['auc']:.3f}" in figure_html(page, "fig-roc")
    assert "the model card of m-hand has no calibration" in figure_html(page, "fig-calibration")
    assert "the model card lacks windows, calibration, roc, importance_gain" in page
    assert "could not be" not in page


# --- in a browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, which `make browser` installs (`make test` runs it first)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (Debian's chromium package)")
    return CHROMIUM


def run_chromium(binary: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",  # tests run as root in a container
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run(
        [str(binary), *flags, *args], capture_output=True, text=True, timeout=60, check=False
    )


def console_problems(stderr: str) -> list[str]:
    """Console output of the page: it has no script, so any is an error (CSP violation, ...)."""
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Refused to" in line
    ]


def screenshot_is_not_blank(png: Path) -> None:
    from matplotlib import image

    assert png.is_file() and png.stat().st_size > 20_000, png
    pixels = image.imread(str(png))[..., :3]
    assert pixels.std() > 0.05, "the screenshot is blank"
    drawn = (pixels.mean(axis=2) < 0.9).mean()
    assert drawn > 0.02, f"only {drawn:.1%} of the screenshot is drawn on"


@book
def test_report_loads_in_headless_chromium_and_shows_the_charts(
    with_champion: tuple[Settings, dict], chromium: Path, tmp_path: Path
) -> None:
    settings, _ = with_champion
    path = write_report(settings, LAST)
    url = path.resolve().as_uri()

    dom = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]
    for fig_id in FIGURE_IDS:
        assert f'id="{fig_id}"' in dom.stdout, fig_id
    page = path.read_text(encoding="utf-8")
    assert dom.stdout.count("<svg") == page.count("<svg") >= 10
    assert not console_problems(dom.stderr), console_problems(dom.stderr)

    png = tmp_path / "report.png"
    shot = run_chromium(
        chromium, tmp_path / "profile-shot", f"--screenshot={png}", "--window-size=1280,4000", url
    )
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert not console_problems(shot.stderr), console_problems(shot.stderr)
    screenshot_is_not_blank(png)
    shutil.copyfile(png, DEMO_SCREENSHOT)  # for a person to look at

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
from creditflow.settings import Settings, load_settings

LAST = date(2026, 3, 14)  # the last night of the published_book fixture
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

    for sid in ("run", "delinquency", "model", "limits", "data-quality", "training"):
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
    assert dom.stdout.count("<svg") == page.count("<svg") >= 8
    assert not console_problems(dom.stderr), console_problems(dom.stderr)

    png = tmp_path / "report.png"
    shot = run_chromium(
        chromium, tmp_path / "profile-shot", f"--screenshot={png}", "--window-size=1280,4000", url
    )
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert not console_problems(shot.stderr), console_problems(shot.stderr)
    screenshot_is_not_blank(png)
    shutil.copyfile(png, DEMO_SCREENSHOT)  # for a person to look at

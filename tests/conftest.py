"""Shared fixtures: small synthetic landing zones, generated once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import pytest

import creditflow  # noqa: F401  (sets the offline defaults before Prefect or GX is imported)
from creditflow.settings import Settings
from creditflow.upstream.generate import GenerationResult, generate
from creditflow.upstream.simulation import GeneratorConfig

# Spans Spring Festival 2026 (17 February) so calendar effects are in the data.
SMALL = GeneratorConfig(customers=1500, days=75, start=date(2026, 1, 20), seed=3)


@pytest.fixture(scope="session")
def small_book(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    """A clean CSV landing zone: 800 customers, 75 days."""
    return generate(SMALL, tmp_path_factory.mktemp("small") / "landing")


@pytest.fixture(scope="session")
def damaged_book(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    """The same book with 2% of eligible rows damaged, and the sidecar of what was done."""
    return generate(SMALL, tmp_path_factory.mktemp("damaged") / "landing", defect_rate=0.02)


@pytest.fixture(scope="session")
def parquet_book(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    """The same book delivered as Parquet."""
    return generate(SMALL, tmp_path_factory.mktemp("parquet") / "landing", fmt="parquet")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real (temporary, local) Prefect API for the flow tests, started once per worker."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    with prefect_test_harness(server_startup_timeout=120):
        yield


# A published area from real nightly runs, for the reader, catalog and report tests.
PUBLISHED_BOOK = GeneratorConfig(customers=400, days=14, start=date(2026, 3, 1), seed=12)


@pytest.fixture(scope="session")
def published_book(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Fourteen nights of a 400-customer book, backfilled through the whole pipeline."""
    from datetime import timedelta

    from creditflow.flows.backfill import backfill
    from creditflow.settings import load_settings

    root = tmp_path_factory.mktemp("published_book")
    landing = generate(PUBLISHED_BOOK, root / "landing").landing
    settings = load_settings(home=root / "home", landing=landing, data_docs=False)
    last = PUBLISHED_BOOK.start + timedelta(days=PUBLISHED_BOOK.days - 1)
    backfill(start=PUBLISHED_BOOK.start, end=last, overrides=settings.model_dump(mode="json"))
    yield settings

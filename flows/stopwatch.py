"""Step durations for a night's record: ``with watch.step("ledger"): ...``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Seconds per named step, and the step that is running (to name a failure)."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}
        self.current: str | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.current = name
        t0 = time.perf_counter()
        yield
        self.durations[name] = time.perf_counter() - t0

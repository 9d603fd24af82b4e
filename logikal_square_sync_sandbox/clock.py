"""The sandboxes' sense of time: the real clock by default, a hand-moved one in tests.

Both fake servers stamp their data with wall time (order `updated_at`, an
elevation's `changedDate`) and measure lifetimes (cursors, tokens) with a
monotonic clock. A test that sleeps to let a lifetime pass races the machine's
load; a `ManualClock` moves only when the test says so, which makes "0.5 s
later" exact.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Protocol


class SandboxClock(Protocol):
    def time(self) -> float:
        """Wall time in epoch seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for lifetimes."""
        ...


class SystemClock:
    """The machine's clocks (what the demo and the benchmarks use)."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Stands still until `advance` moves both its wall and its monotonic time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._lock = threading.Lock()
        self._wall = start.timestamp()
        self._monotonic = 0.0

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go back")
        with self._lock:
            self._wall += seconds
            self._monotonic += seconds

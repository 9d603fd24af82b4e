"""A point in monotonic time by which a sensor tick must be done sending."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """On the monotonic clock: a wall clock stepped by NTP (or pinned by a test) cannot stretch it."""

    end: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def clip(self, timeout: float) -> float:
        """`timeout`, or less when the deadline comes sooner."""
        return min(timeout, self.remaining())

"""The one place the product reads the wall clock.

Code whose behaviour depends on the time takes `now` (or a `clock`) as a
parameter that defaults to this, so a test can pin the moment instead of
depending on when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)

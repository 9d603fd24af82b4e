"""The suite's time: every test runs at a pinned moment, never at the machine's.

`ANCHOR` is the "now" every test starts at (the clock ticks on from there, so
durations and timeouts behave); the `pinned_clock` fixture in `conftest.py`
puts the whole process there with time-machine, sandbox threads included.
`AWKWARD_MOMENTS` are the instants where date logic breaks if it is wrong:
just after and before midnight UTC, at the daily schedule's hour, the last
day of a month and of a year, and both daylight-saving changes of Europe/Berlin.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

ANCHOR = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

AWKWARD_MOMENTS = {
    "00:05 UTC": datetime(2026, 6, 16, 0, 5, tzinfo=UTC),
    "02:00 UTC": datetime(2026, 6, 16, 2, 0, tzinfo=UTC),
    "02:16 UTC": datetime(2026, 12, 2, 2, 16, tzinfo=UTC),  # when CI was red
    "12:00 UTC": datetime(2026, 6, 16, 12, 0, tzinfo=UTC),
    "23:55 UTC": datetime(2026, 6, 16, 23, 55, tzinfo=UTC),
    "last day of a month": datetime(2026, 4, 30, 23, 55, tzinfo=UTC),
    "last day of a year": datetime(2026, 12, 31, 23, 55, tzinfo=UTC),
    "first minutes of a year": datetime(2027, 1, 1, 0, 5, tzinfo=UTC),
    # Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
    "after Berlin springs forward": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    "after Berlin falls back": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
}

TIMEZONES = ["UTC", "Europe/Berlin"]


def awkward_moments() -> list:
    """`AWKWARD_MOMENTS` as pytest params, named."""
    return [pytest.param(moment, id=name) for name, moment in AWKWARD_MOMENTS.items()]

"""The progress reporter: its cadence on an injected clock, the time-left arithmetic, the line."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from logikal_square_sync.common.progress import Progress, TimeRanges, duration, progress_line, time_left
from logikal_square_sync.policies import ProgressPolicy
from logikal_square_sync_tests.clock import ANCHOR


@dataclass
class StepClock:
    """A clock that moves only when told to."""

    now: datetime = ANCHOR

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


LOG = logging.getLogger("logikal_square_sync.tests.progress")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOG.name]


def test_a_line_every_n_pages_when_pages_come_fast(caplog: pytest.LogCaptureFixture) -> None:
    clock = StepClock()
    progress = Progress(LOG, "square/orders", ProgressPolicy(every_pages=3, every_seconds=60), clock=clock)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        for page in range(1, 8):
            clock.advance(1)
            progress.note(page, page * 100)
    lines = _lines(caplog)
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == ["3 pages", "6 pages"]
    assert lines[0] == "square/orders: 3 pages, 300 records in 3 s (100 records/s)"


def test_a_line_every_s_seconds_when_pages_come_slowly(caplog: pytest.LogCaptureFixture) -> None:
    clock = StepClock()
    progress = Progress(LOG, "slow", ProgressPolicy(every_pages=100, every_seconds=30), clock=clock)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        for page in range(1, 11):
            clock.advance(10)  # a page every 10 s: a line at 30 s, 60 s, 90 s
            progress.note(page, page * 10)
    assert [line.split(" in ")[1].split(" (")[0] for line in _lines(caplog)] == [
        "30 s",
        "1 min 0 s",
        "1 min 30 s",
    ]


def test_whichever_comes_first_restarts_both_counts(caplog: pytest.LogCaptureFixture) -> None:
    clock = StepClock()
    progress = Progress(LOG, "mixed", ProgressPolicy(every_pages=5, every_seconds=20), clock=clock)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        clock.advance(25)
        progress.note(1, 1)  # by time
        for page in range(2, 7):
            clock.advance(1)
            progress.note(page, page)  # by pages: 5 pages after the last line, at page 6
    assert [line.split(": ")[1].split(" pages")[0] for line in _lines(caplog)] == ["1", "6"]


def test_the_time_left_is_the_elapsed_time_scaled_by_what_remains() -> None:
    assert time_left(60, 0.25) == pytest.approx(180)  # a quarter in a minute: three minutes more
    assert time_left(60, 1.0) == 0
    assert time_left(60, 0.0) is None  # nothing done yet: no estimate
    assert time_left(60, 1.5) == 0  # never negative


def test_durations_read_as_an_operator_says_them() -> None:
    assert [duration(s) for s in (0, 44.6, 60, 184, 3600, 7530)] == [
        "0 s",
        "45 s",
        "1 min 0 s",
        "3 min 4 s",
        "1 h 0 min",
        "2 h 5 min",
    ]


def test_a_line_with_a_total_shows_the_share_done_and_the_time_left() -> None:
    line = progress_line(
        "LogiKal project 'Tower' (p-1)",
        steps=120,
        unit="elevations done",
        count=118,
        noun="parts lists",
        elapsed_seconds=62,
        total=300,
    )
    assert line == (
        "LogiKal project 'Tower' (p-1): 120 of 300 elevations done, 118 parts lists in 1 min 2 s "
        "(1.9 parts lists/s); 40% done, about 1 min 33 s left"
    )


def test_a_line_with_a_share_done_and_no_time_elapsed_has_no_rate() -> None:
    line = progress_line("x", steps=1, unit="pages", count=0, noun="orders", elapsed_seconds=0, done=0.0)
    assert line == "x: 1 pages, 0 orders in 0 s; 0% done"


def test_time_ranges_weigh_each_range_by_its_length_from_its_first_page() -> None:
    day = timedelta(days=1)
    ranges = TimeRanges([(ANCHOR - 30 * day, ANCHOR), (ANCHOR - 2 * day, ANCHOR)])
    # The first page of the first range reached 3 days ago: the 27 empty days before count for nothing.
    assert ranges.share(0, ANCHOR - 3 * day) == 0
    assert ranges.share(0, ANCHOR - 2 * day) == pytest.approx(1 / 5)  # 1 of 3 + 2 days
    assert ranges.share(1, ANCHOR - 2 * day) == pytest.approx(3 / 5)  # the first range read whole
    assert ranges.share(1, ANCHOR - 1 * day) == pytest.approx(4 / 5)
    assert ranges.share(1, ANCHOR + day) == 1  # a page past the end counts as the end
    assert TimeRanges([(ANCHOR, ANCHOR)]).share(0, ANCHOR) == 1  # nothing to read: done


def test_a_range_not_begun_counts_from_the_earliest_first_page() -> None:
    day = timedelta(days=1)
    first_sync = ANCHOR - 4000 * day  # both groups of new locations start at history_start
    ranges = TimeRanges([(first_sync, ANCHOR), (first_sync, ANCHOR)])
    assert ranges.share(0, ANCHOR - 20 * day) == 0
    assert ranges.share(0, ANCHOR - 10 * day) == pytest.approx(1 / 4)  # the second taken as 20 days too
    assert ranges.share(1, ANCHOR - 20 * day) == pytest.approx(1 / 2)

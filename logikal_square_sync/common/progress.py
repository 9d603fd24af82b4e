"""How far a long sync is, in its log: steps (pages, listings, elevations), records, their rate, time left.

A first full sync reads for many minutes; without this its log says nothing between one group
of locations and the next. A sync notes its counts as each page (or listing, or parts list)
completes; one line is logged every `every_pages` of them or once `every_seconds` have passed
since the last line, whichever comes first (`progress` in policies.yaml). The time is checked
only as steps complete, so nothing runs in between. Where the share of the work done is known
(a total of steps, or the share of a time range read) the line adds it and the time left at
the rate so far. The engines log through their own loggers, which dagster.yaml's `python_logs`
hands to the run's event log. No Dagster here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from logikal_square_sync.common.clock import Clock, utc_now


class Cadence(Protocol):
    """How often a line is logged (`ProgressPolicy` of policies.py): whichever comes first."""

    @property
    def every_pages(self) -> int: ...
    @property
    def every_seconds(self) -> float: ...


def duration(seconds: float) -> str:
    """`seconds` as an operator reads it: '45 s', '3 min 4 s', '2 h 5 min'."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def time_left(elapsed_seconds: float, done: float) -> float | None:
    """The seconds still to go at the rate so far, when `done` (0..1) of the work took `elapsed_seconds`."""
    if done <= 0:
        return None
    return elapsed_seconds * (1 - min(done, 1.0)) / min(done, 1.0)


def _rate(count: int, elapsed_seconds: float) -> str:
    per_second = count / elapsed_seconds
    return f"{per_second:,.0f}" if per_second >= 100 else f"{per_second:.1f}"


def progress_line(
    what: str,
    *,
    steps: int,
    unit: str,
    count: int,
    noun: str,
    elapsed_seconds: float,
    total: int | None = None,
    done: float | None = None,
) -> str:
    """One line: 'square/orders: 120 pages, 118,000 orders in 1 min 35 s (1,242 orders/s); 34% done,
    about 3 min 4 s left' (the share done and the time left where known)."""
    of_total = f" of {total:,}" if total is not None else ""
    line = f"{what}: {steps:,}{of_total} {unit}, {count:,} {noun} in {duration(elapsed_seconds)}"
    if elapsed_seconds > 0:
        line += f" ({_rate(count, elapsed_seconds)} {noun}/s)"
    if done is None and total:
        done = steps / total
    if done is not None:
        line += f"; {int(min(done, 1.0) * 100)}% done"
        left = time_left(elapsed_seconds, done)
        if left is not None:
            line += f", about {duration(left)} left"
    return line


class Progress:
    """Logs a sync's progress line at the cadence; safe to note from several threads."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        cadence: Cadence,
        *,
        unit: str = "pages",
        noun: str = "records",
        total: int | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._log, self._what, self._cadence, self._clock = log, what, cadence, clock
        self._unit, self._noun, self.total = unit, noun, total
        self._started = self._last_at = clock()
        self._steps_at_last_line = 0
        self._lock = threading.Lock()

    def note(self, steps: int, count: int, *, done: float | None = None) -> None:
        """The counts so far (`steps` done, `count` records); `done` the share of the work, if known.

        Without `done`, a known `total` of steps gives it.
        """
        with self._lock:
            now = self._clock()
            since_line = (now - self._last_at).total_seconds()
            if (
                steps - self._steps_at_last_line < self._cadence.every_pages
                and since_line < self._cadence.every_seconds
            ):
                return
            self._steps_at_last_line, self._last_at = steps, now
            elapsed = (now - self._started).total_seconds()
        self._log.info(
            progress_line(
                self._what,
                steps=steps,
                unit=self._unit,
                count=count,
                noun=self._noun,
                elapsed_seconds=elapsed,
                total=self.total,
                done=done,
            )
        )


class TimeRanges:
    """Time ranges read one after another, each from its start towards its end: the share read so far.

    Square's orders are read per location group by a time, oldest first, so the time a group's
    pages have reached tells how much of its range is read. A first sync starts years before a
    location's first order, and its first page leaps over those empty years: a range counts from
    where its first page reached, so they do not pass for work done, and a range not begun yet
    from no earlier than the earliest first page so far (new locations' groups start alike).
    """

    def __init__(self, ranges: Sequence[tuple[datetime, datetime]]) -> None:
        self._starts = [start for start, _ in ranges]
        self._ends = [end for _, end in ranges]
        self._begun: set[int] = set()

    def _span(self, index: int, floor: datetime) -> float:
        start = self._starts[index] if index in self._begun else max(self._starts[index], floor)
        return max((self._ends[index] - start).total_seconds(), 0.0)

    def share(self, index: int, reached: datetime) -> float:
        """The share read once range `index` is read up to `reached` (every range before it whole)."""
        if index not in self._begun:
            self._begun.add(index)
            self._starts[index] = min(max(self._starts[index], reached), self._ends[index])
        floor = min(self._starts[i] for i in self._begun)
        spans = [self._span(i, floor) for i in range(len(self._starts))]
        total = sum(spans)
        if total <= 0:
            return 1.0
        within = min(max((reached - self._starts[index]).total_seconds(), 0.0), spans[index])
        return (sum(spans[:index]) + within) / total

"""The day an order belongs to: the calendar day of its `created_at` in SYNC_TIMEZONE.

The completeness check reports missing orders by this day, the orders
backfill takes a range of these days, and the tests pick orders by it; one
definition keeps the three in step. With SYNC_TIMEZONE unset the days are UTC
days; in a zone with daylight saving a day is 23 or 25 hours long twice a year.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from logikal_square_sync.common.clock import utc_now

# SearchOrders range ends are inclusive and Square's timestamps are milliseconds:
# the last instant of a day is one millisecond before the next begins.
_LAST_MILLISECOND = timedelta(milliseconds=1)

OrderTime = Literal["created_at", "updated_at"]


def order_day(created_at: datetime, zone: ZoneInfo) -> date:
    return created_at.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """`day`'s first and last millisecond in UTC, both inclusive (as SearchOrders takes ranges)."""
    return day_start(day, zone), day_start(day + timedelta(days=1), zone) - _LAST_MILLISECOND


@dataclass(frozen=True)
class OrderDays:
    """A range of order days in one zone, both ends inclusive."""

    start: date
    end: date
    zone: ZoneInfo

    @classmethod
    def parse(cls, start: str, end: str, zone: ZoneInfo, *, now: datetime | None = None) -> OrderDays:
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as error:
            raise ValueError(f"start and end must be ISO dates (YYYY-MM-DD): {error}") from None
        if first > last:
            raise ValueError(f"start {first} is after end {last}")
        today = order_day(now or utc_now(), zone)
        if first > today:
            raise ValueError(f"start {first} is in the future (today is {today} in {zone.key})")
        return cls(first, last, zone)

    @property
    def start_at(self) -> datetime:
        return day_start(self.start, self.zone)

    @property
    def end_at(self) -> datetime:
        return day_bounds(self.end, self.zone)[1]

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)

    def describe(self) -> str:
        return f"{self.start} .. {self.end} ({self.zone.key})"

"""Are all of the source's orders in the warehouse? Compared day by day.

The old nightly script lost 15,743 orders and nobody noticed. This compares,
for each order day (`order_days`: the day of `created_at` in SYNC_TIMEZONE)
of a recent window, the order ids Square has (SearchOrders with
`return_entries`, which returns ids only and is cheap) with the ids in the
warehouse, and names the days with missing orders, a sample of their ids and
the backfill run config that recovers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.order_days import OrderTime, day_bounds, order_day
from logikal_square_sync.square.engine.order_sync import SYNCED_UNTIL, location_groups, search_body
from logikal_square_sync.square.engine.records import decode_order_entries_page
from logikal_square_sync.square.engine.store import known_location_ids, read_watermarks, stored_order_ids

SAMPLE_SIZE = 10


@dataclass
class DayComparison:
    day: date
    at_source: int
    missing: list[str] = field(default_factory=list)


@dataclass
class CompletenessResult:
    synced_until: str | None
    days: list[DayComparison]
    zone: str = "UTC"

    @property
    def passed(self) -> bool:
        return self.synced_until is not None and not any(day.missing for day in self.days)

    @property
    def missing_total(self) -> int:
        return sum(len(day.missing) for day in self.days)

    def backfill_config(self) -> dict[str, Any] | None:
        """The `square_orders_backfill` run config that re-fetches every day with missing orders."""
        bad = [day.day for day in self.days if day.missing]
        if not bad:
            return None
        config = {"start": str(min(bad)), "end": str(max(bad)), "by": "created_at"}
        return {"ops": {"refetch_square_orders": {"config": config}}}

    def description(self) -> str:
        if self.synced_until is None:
            return "square/orders has never completed an incremental sync: nothing to compare yet"
        bad = [day for day in self.days if day.missing]
        if not bad:
            total = sum(day.at_source for day in self.days)
            return (
                f"all {total} orders created in the last {len(self.days)} day(s) ({self.zone}) "
                "are in the warehouse"
            )
        parts = [
            f"{day.day}: {len(day.missing)} of {day.at_source} missing"
            f" (e.g. {', '.join(day.missing[:SAMPLE_SIZE])})"
            for day in bad
        ]
        return (
            f"{self.missing_total} order(s) at Square are missing from the warehouse (days in {self.zone}, "
            f"by created_at) — {'; '.join(parts)}. To recover them, launch the job square_orders_backfill "
            f"with the run config {json.dumps(self.backfill_config())}"
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "synced_until": self.synced_until or "never",
            "days_compared": len(self.days),
            "order_day_zone": self.zone,
            "orders_at_source": sum(day.at_source for day in self.days),
            "orders_missing": self.missing_total,
            "days_with_missing_orders": ", ".join(str(day.day) for day in self.days if day.missing) or "none",
        }


def _source_ids(
    client: SquareClient, group: list[str], start_at: datetime, end_at: datetime, by: OrderTime
) -> set[str]:
    def body() -> dict[str, Any]:
        return search_body(group, start_at, end_at, 1000, by=by, return_entries=True)

    ids: set[str] = set()
    for page in client.search_orders(body, decode=decode_order_entries_page):
        ids.update(entry.order_id for entry in page["order_entries"])
    return ids


def compare_recent_orders(
    client: SquareClient, engine: sa.Engine, *, window_days: int, zone: ZoneInfo, group_size: int = 10
) -> CompletenessResult:
    """Compares the orders of the `window_days` order days up to the last completed sync.

    Orders created after that sync cannot be expected in the warehouse yet, so
    the window ends where the last incremental run's fixed end was; and an
    order missing from the warehouse whose last update came after that end
    (edited while the sync ran) is left to the next run, which reads it.
    """
    (synced_until,) = read_watermarks(engine, SYNCED_UNTIL)
    if synced_until is None:
        return CompletenessResult(None, [], zone.key)
    until = datetime.fromisoformat(synced_until)
    groups = location_groups(known_location_ids(engine), {}, group_size)
    last_day = order_day(until, zone)
    days = []
    for offset in range(window_days - 1, -1, -1):
        day = last_day - timedelta(days=offset)
        start_at, end_at = day_bounds(day, zone)
        end_at = min(end_at, until)
        at_source: set[str] = set()
        for group in groups:
            at_source |= _source_ids(client, group, start_at, end_at, "created_at")
        missing = at_source - stored_order_ids(engine, at_source)
        if missing:
            # Only orders whose current version the last sync could have read count as missing.
            readable: set[str] = set()
            for group in groups:
                readable |= _source_ids(client, group, start_at, until, "updated_at")
            missing &= readable
        days.append(DayComparison(day=day, at_source=len(at_source), missing=sorted(missing)))
    return CompletenessResult(synced_until, days, zone.key)

"""Are all of the source's orders in the warehouse? Compared day by day.

The old nightly script lost 15,743 orders and nobody noticed. This compares,
for each day of a recent window, the order ids Square has (SearchOrders with
`return_entries`, which returns ids only and is cheap) with the ids in the
warehouse, and names the days with missing orders and a sample of their ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.square.client import SquareClient
from logikal_square_sync.square.orders import SYNCED_UNTIL, known_location_ids, location_groups
from logikal_square_sync.square.timestamps import format_timestamp
from logikal_square_sync.warehouse.state import get_watermark
from logikal_square_sync.warehouse.tables import square_orders

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

    @property
    def passed(self) -> bool:
        return self.synced_until is not None and not any(day.missing for day in self.days)

    @property
    def missing_total(self) -> int:
        return sum(len(day.missing) for day in self.days)

    def description(self) -> str:
        if self.synced_until is None:
            return "square/orders has never completed an incremental sync: nothing to compare yet"
        bad = [day for day in self.days if day.missing]
        if not bad:
            total = sum(day.at_source for day in self.days)
            return f"all {total} orders created in the last {len(self.days)} day(s) are in the warehouse"
        parts = [
            f"{day.day}: {len(day.missing)} of {day.at_source} missing"
            f" (e.g. {', '.join(day.missing[:SAMPLE_SIZE])})"
            for day in bad
        ]
        return f"{self.missing_total} order(s) at Square are missing from the warehouse — " + "; ".join(parts)

    def metadata(self) -> dict[str, Any]:
        return {
            "synced_until": self.synced_until or "never",
            "days_compared": len(self.days),
            "orders_at_source": sum(day.at_source for day in self.days),
            "orders_missing": self.missing_total,
            "days_with_missing_orders": ", ".join(str(day.day) for day in self.days if day.missing) or "none",
        }


def _source_ids(client: SquareClient, group: list[str], start_at: datetime, end_at: datetime) -> set[str]:
    def body() -> dict[str, Any]:
        return {
            "location_ids": group,
            "return_entries": True,
            "limit": 1000,
            "query": {
                "filter": {
                    "date_time_filter": {
                        "created_at": {
                            "start_at": format_timestamp(start_at),
                            "end_at": format_timestamp(end_at),
                        }
                    }
                },
                "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"},
            },
        }

    ids: set[str] = set()
    for page in client.search_orders(body):
        ids.update(entry["order_id"] for entry in page.get("order_entries") or [])
    return ids


def _warehouse_ids(conn: sa.Connection, ids: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(ids)
    for i in range(0, len(ordered), 1000):
        chunk = ordered[i : i + 1000]
        found.update(
            conn.execute(sa.select(square_orders.c.id).where(square_orders.c.id.in_(chunk))).scalars()
        )
    return found


def compare_recent_orders(
    client: SquareClient, engine: sa.Engine, *, window_days: int, group_size: int = 10
) -> CompletenessResult:
    """Compares the orders created in the `window_days` days up to the last completed sync.

    Orders created after that sync cannot be expected in the warehouse yet,
    so the window ends where the last incremental run's fixed end was.
    """
    with engine.connect() as conn:
        synced_until = get_watermark(conn, SYNCED_UNTIL)
    if synced_until is None:
        return CompletenessResult(None, [])
    until = datetime.fromisoformat(synced_until)
    groups = location_groups(known_location_ids(engine), {}, group_size)
    days = []
    for offset in range(window_days - 1, -1, -1):
        day = (until - timedelta(days=offset)).date()
        start_at = datetime.combine(day, time.min, UTC)
        end_at = min(datetime.combine(day, time.max, UTC), until)
        at_source: set[str] = set()
        for group in groups:
            at_source |= _source_ids(client, group, start_at, end_at)
        with engine.connect() as conn:
            missing = sorted(at_source - _warehouse_ids(conn, at_source))
        days.append(DayComparison(day=day, at_source=len(at_source), missing=missing))
    return CompletenessResult(synced_until, days)

"""Square inventory counts through BatchRetrieveInventoryCounts.

Incremental runs ask for counts calculated after the watermark; every
`full_refresh_days` a run reads every count, which repairs anything an
incremental run could not see. Results come newest first, so as with the
catalog the watermark moves only when the whole result is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.clock import utc_now
from logikal_square_sync.pages import with_last_flag
from logikal_square_sync.policies import InventoryPolicy
from logikal_square_sync.square.client import SquareClient
from logikal_square_sync.square.records import inventory_row
from logikal_square_sync.square.report import SyncReport
from logikal_square_sync.square.timestamps import format_timestamp
from logikal_square_sync.warehouse.state import get_watermark, set_watermark
from logikal_square_sync.warehouse.tables import square_inventory_counts
from logikal_square_sync.warehouse.upsert import upsert

WATERMARK = "square/inventory"
LAST_FULL_REFRESH = "square/inventory/full_refresh_at"
# calculated_at is set by Square's servers; a little overlap covers counts committed out of order.
OVERLAP = timedelta(minutes=5)


def sync_inventory(
    client: SquareClient,
    engine: sa.Engine,
    policy: InventoryPolicy,
    *,
    full_refresh: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    run_started = now or utc_now()
    with engine.connect() as conn:
        watermark = get_watermark(conn, WATERMARK)
        last_full = get_watermark(conn, LAST_FULL_REFRESH)
    due = last_full is None or (
        run_started - datetime.fromisoformat(last_full) >= timedelta(days=policy.full_refresh_days)
    )
    full = full_refresh or watermark is None or due
    report = SyncReport(watermark_before=watermark, mode="full refresh" if full else "incremental")

    def body() -> dict[str, Any]:
        request: dict[str, Any] = {"limit": policy.page_size}
        if not full and watermark:
            request["updated_after"] = format_timestamp(datetime.fromisoformat(watermark) - OVERLAP)
        return request

    newest = datetime.fromisoformat(watermark) if watermark else None
    for page, is_last in with_last_flag(client.inventory_counts(body)):
        synced_at = utc_now()
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for count in page.get("counts") or []:
            row = inventory_row(count, synced_at)
            key = (row["catalog_object_id"], row["location_id"], row["state"])
            if key not in rows or row["calculated_at"] > rows[key]["calculated_at"]:
                rows[key] = row
        with engine.begin() as conn:
            result = upsert(conn, square_inventory_counts, list(rows.values()), newer_by=("calculated_at",))
            report.inserted += result.inserted
            report.updated += result.updated
            for row in rows.values():
                if newest is None or row["calculated_at"] > newest:
                    newest = row["calculated_at"]
            if is_last:
                # The whole result is in: the watermark (and the refresh date) move with the last page.
                if newest is not None:
                    report.watermark_after = format_timestamp(newest)
                    set_watermark(conn, WATERMARK, report.watermark_after)
                if full:
                    set_watermark(conn, LAST_FULL_REFRESH, format_timestamp(run_started))
        report.pages += 1
    report.watermark_after = report.watermark_after or watermark
    return report.finish(client)

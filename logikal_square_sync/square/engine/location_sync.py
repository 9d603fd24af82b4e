"""Square locations: a full refresh each run (the API has no updated_at and no paging)."""

from __future__ import annotations

import sqlalchemy as sa

from logikal_square_sync.clock import utc_now
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.rows import location_row
from logikal_square_sync.sync_report import SyncReport
from logikal_square_sync.warehouse.tables import square_locations
from logikal_square_sync.warehouse.upsert import upsert


def sync_locations(client: SquareClient, engine: sa.Engine) -> SyncReport:
    report = SyncReport(mode="full refresh")
    synced_at = utc_now()
    rows = [location_row(location, synced_at) for location in client.list_locations()]
    report.pages, report.read = 1, len(rows)
    with engine.begin() as conn:
        result = upsert(conn, square_locations, rows)
    report.inserted, report.updated = result.inserted, result.updated
    report.extra["locations_at_source"] = len(rows)
    report.extra["active_locations"] = sum(1 for row in rows if row["status"] == "ACTIVE")
    return report.finish(client)

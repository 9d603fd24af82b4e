"""Square locations: a full refresh each run (the API has no updated_at and no paging)."""

from __future__ import annotations

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.rows import Row, location_row
from logikal_square_sync.square.engine.store import (
    Quarantine,
    row_candidate,
    upsert_locations,
    write_quarantining,
)
from logikal_square_sync.warehouse.quarantine import Candidate
from logikal_square_sync.warehouse.tables import square_locations

OBJECT_TYPE = "location"


def _candidate(row: Row) -> Candidate[Row]:
    return row_candidate(OBJECT_TYPE, row["id"], row, square_locations, row)


def sync_locations(client: SquareClient, engine: sa.Engine) -> SyncReport:
    report = SyncReport(mode="full refresh")
    synced_at = utc_now()
    locations, malformed = client.list_locations()
    rows = [location_row(location, synced_at) for location in locations]
    report.pages, report.read = 1, len(rows)
    quarantine = Quarantine(engine)

    def released(conn: sa.Connection, written: list[Row]) -> None:
        quarantine.release(conn, OBJECT_TYPE, (row["id"] for row in written))

    result, rejected = write_quarantining(
        engine, rows, upsert_locations, _candidate, released=released, rejected=malformed
    )
    report.inserted, report.updated, report.rejected = result.inserted, result.updated, len(rejected)
    report.extra["locations_at_source"] = len(rows)
    report.extra["active_locations"] = sum(1 for row in rows if row["status"] == "ACTIVE")
    return report.finish(client)

"""Square locations: a full refresh each run (the API has no updated_at and no paging)."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.rows import location_row
from logikal_square_sync.warehouse.quarantine import Candidate, quarantined_ids, release, write_quarantining
from logikal_square_sync.warehouse.tables import square_locations
from logikal_square_sync.warehouse.upsert import UpsertResult, upsert

SOURCE = "Square"
OBJECT_TYPE = "location"
Row = dict[str, Any]


def _candidate(row: Row) -> Candidate[Row]:
    return Candidate(
        OBJECT_TYPE,
        row["id"],
        row,
        [(square_locations, row)],
        lambda: orjson.dumps(row, default=str).decode(),
    )


def _write(conn: sa.Connection, rows: list[Row]) -> UpsertResult:
    return upsert(conn, square_locations, rows)


def sync_locations(client: SquareClient, engine: sa.Engine) -> SyncReport:
    report = SyncReport(mode="full refresh")
    synced_at = utc_now()
    locations, malformed = client.list_locations()
    rows = [location_row(location, synced_at) for location in locations]
    report.pages, report.read = 1, len(rows)
    quarantined = quarantined_ids(engine, SOURCE).get(OBJECT_TYPE, set())

    def released(conn: sa.Connection, written: list[Row]) -> None:
        release(conn, SOURCE, OBJECT_TYPE, quarantined.intersection(row["id"] for row in written))

    result, rejected = write_quarantining(
        engine, SOURCE, rows, _write, _candidate, released=released, rejected=malformed
    )
    report.inserted, report.updated, report.rejected = result.inserted, result.updated, len(rejected)
    report.extra["locations_at_source"] = len(rows)
    report.extra["active_locations"] = sum(1 for row in rows if row["status"] == "ACTIVE")
    return report.finish(client)

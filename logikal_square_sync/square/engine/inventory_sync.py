"""Square inventory counts through BatchRetrieveInventoryCounts.

Incremental runs ask for counts calculated after the watermark (minus a
small overlap); every `full_refresh_days` a run reads every count, which
repairs anything an incremental run could not see.

The watermark is the newest `calculated_at` on the run's first page. Results
come newest first, so that is the newest count that existed when the run
started, on Square's own clock: every count calculated up to it is in the
result, and every count that changes later gets a later `calculated_at`.
Whether or not Square fixes the result set at the first page (undocumented),
a later page can show a count that changed after the run started, stamped
later than changes the run already paged past; the newest time seen over the
whole run would skip those. A count that changes mid-run jumps to the front
of a re-evaluated result, which is already read, so it is read next run.
The watermark moves when the whole result is written, with its last page;
so pages are written several to a transaction (`batches.py`): a crash before
the last page leaves the watermark where it was, and the next run reads the
whole span again, rewriting nothing it already holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.policies import InventoryPolicy
from logikal_square_sync.square.engine.batches import BatchLimits, batched
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.full_refresh import sync_start
from logikal_square_sync.square.engine.pages import with_last_flag
from logikal_square_sync.square.engine.pipeline import Prefetched
from logikal_square_sync.square.engine.records import REJECTED
from logikal_square_sync.square.engine.rows import inventory_row
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.quarantine import (
    Candidate,
    Rejection,
    quarantined_ids,
    release,
    write_quarantining,
)
from logikal_square_sync.warehouse.state import set_watermark
from logikal_square_sync.warehouse.tables import square_inventory_counts
from logikal_square_sync.warehouse.upsert import UpsertResult, upsert

WATERMARK = "square/inventory"
LAST_FULL_REFRESH = "square/inventory/full_refresh_at"
# calculated_at is set by Square's servers; a little overlap covers counts committed out of order.
OVERLAP = timedelta(minutes=5)
SOURCE = "Square"
OBJECT_TYPE = "inventory count"

Key = tuple[str, str, str]
Row = dict[str, Any]


def count_id(row: Row) -> str:
    """A count's id in `rejected_records`: catalog object, location and state."""
    return f"{row['catalog_object_id']}/{row['location_id']}/{row['state']}"


def _candidate(row: Row) -> Candidate[Row]:
    return Candidate(
        OBJECT_TYPE,
        count_id(row),
        row,
        [(square_inventory_counts, row)],
        lambda: orjson.dumps(row, default=str).decode(),
    )


@dataclass
class _Page:
    read: int
    rows: list[dict[str, Any]]
    is_last: bool
    rejected: list[Rejection]


@dataclass
class _Batch:
    """Consecutive pages' counts by key: of each, the newest by `calculated_at`, as upserts in turn keep."""

    rows: dict[Key, dict[str, Any]] = field(default_factory=dict)
    read: int = 0
    pages: int = 0
    last: bool = False
    newest_on_first_page: datetime | None = None
    rejected: list[Rejection] = field(default_factory=list)  # records that failed validation

    @property
    def size(self) -> int:
        return len(self.rows)

    def add(self, page: _Page) -> bool:
        if self.pages == 0 and page.rows:
            self.newest_on_first_page = max(row["calculated_at"] for row in page.rows)
        rows = self.rows
        for row in page.rows:
            key = (row["catalog_object_id"], row["location_id"], row["state"])
            held = rows.get(key)
            # Ties keep the copy read first: the upsert writes only a strictly newer one.
            if held is None or row["calculated_at"] > held["calculated_at"]:
                rows[key] = row
        self.read += page.read
        self.pages += 1
        self.last = page.is_last
        self.rejected += page.rejected
        return True


def sync_inventory(
    client: SquareClient,
    engine: sa.Engine,
    policy: InventoryPolicy,
    *,
    full_refresh: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    run_started = now or utc_now()
    start = sync_start(
        engine,
        watermark_key=WATERMARK,
        last_full_refresh_key=LAST_FULL_REFRESH,
        full_refresh_days=policy.full_refresh_days,
        run_started=run_started,
        full_refresh=full_refresh,
    )
    watermark, full = start.watermark, start.full
    report = SyncReport(watermark_before=watermark, mode=start.mode)

    def body() -> dict[str, Any]:
        request: dict[str, Any] = {"limit": policy.page_size}
        if not full and watermark:
            request["updated_after"] = format_timestamp(datetime.fromisoformat(watermark) - OVERLAP)
        return request

    def prepared_pages() -> Iterator[_Page]:
        for page, is_last in with_last_flag(client.inventory_counts(body)):
            synced_at = utc_now()
            counts = page.get("counts") or []
            rejected = page.get(REJECTED) or []
            rows = [inventory_row(count, synced_at) for count in counts]
            yield _Page(len(counts) + len(rejected), rows, is_last, rejected)

    limits = BatchLimits(policy.rows_per_transaction, policy.seconds_per_transaction)
    newest_at_start: datetime | None = None
    quarantined = quarantined_ids(engine, SOURCE).get(OBJECT_TYPE, set())

    def released(conn: sa.Connection, rows: list[Row]) -> None:
        if quarantined:  # read once per run: nothing to look up while the quarantine is empty
            taken = quarantined.intersection(count_id(row) for row in rows)
            release(conn, SOURCE, OBJECT_TYPE, taken)

    def write(
        conn: sa.Connection, rows: list[Row], *, last: bool, newest_at_start: datetime | None
    ) -> tuple[UpsertResult, str | None]:
        result = upsert(conn, square_inventory_counts, rows, newer_by=("calculated_at",))
        moved_to = None
        if last:
            # The whole result is in: the watermark (and the refresh date) move with the last page.
            if newest_at_start is not None and (
                watermark is None or newest_at_start > datetime.fromisoformat(watermark)
            ):
                moved_to = format_timestamp(newest_at_start)
                set_watermark(conn, WATERMARK, moved_to)
            if full:
                set_watermark(conn, LAST_FULL_REFRESH, format_timestamp(run_started))
        return result, moved_to

    # Pages are fetched, decoded, turned into rows and merged into batches in a thread of their
    # own while this one writes each batch in one transaction.
    for batch in Prefetched(
        lambda: batched(prepared_pages(), _Batch, limits), depth=1, name="square-inventory-decode"
    ):
        if report.pages == 0:
            newest_at_start = batch.newest_on_first_page
        report.read += batch.read
        (result, moved_to), rejected = write_quarantining(
            engine,
            SOURCE,
            list(batch.rows.values()),
            functools.partial(write, last=batch.last, newest_at_start=newest_at_start),
            _candidate,
            released=released,
            rejected=batch.rejected,
        )
        report.inserted += result.inserted
        report.updated += result.updated
        report.rejected += len(rejected)
        report.watermark_after = moved_to or report.watermark_after
        report.pages += batch.pages
    report.watermark_after = report.watermark_after or watermark
    return report.finish(client)

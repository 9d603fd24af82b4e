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
so pages are written several to a transaction (`incremental_sync.py`): a crash before
the last page leaves the watermark where it was, and the next run reads the
whole span again, rewriting nothing it already holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from logikal_square_sync.policies import InventoryPolicy
from logikal_square_sync.square.engine.client import Body, SquareClient
from logikal_square_sync.square.engine.incremental_object import IncrementalObject, Reading
from logikal_square_sync.square.engine.incremental_sync import IncrementalSync
from logikal_square_sync.square.engine.records import InventoryCount
from logikal_square_sync.square.engine.rows import Row, inventory_row
from logikal_square_sync.square.engine.store import upsert_inventory_counts
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.tables import square_inventory_counts

WATERMARK = "square/inventory"
# calculated_at is set by Square's servers; a little overlap covers counts committed out of order.
OVERLAP = timedelta(minutes=5)
OBJECT_TYPE = "inventory count"


def _request(page_size: int, since: datetime | None) -> Body:
    request: Body = {"limit": page_size}
    if since is not None:
        request["updated_after"] = format_timestamp(since)
    return request


def _rows_of_page(counts: list[InventoryCount], synced_at: datetime) -> dict[sa.Table, list[Row]]:
    return {square_inventory_counts: [inventory_row(count, synced_at) for count in counts]}


def _covered(reading: Reading) -> datetime | None:
    """The newest count of the first page: the newest that existed when the run started."""
    return reading.newest_on_first_page


def inventory(policy: InventoryPolicy) -> IncrementalObject:
    """The inventory's parts of the incremental sync (no policy setting changes them)."""
    return IncrementalObject(
        watermark=WATERMARK,
        tables={square_inventory_counts: OBJECT_TYPE},
        records="counts",
        newer_by="calculated_at",
        stamped_by="calculated_at",
        overlap=OVERLAP,
        request=_request,
        pages=SquareClient.inventory_counts,
        rows=_rows_of_page,
        write=upsert_inventory_counts,
        covered=_covered,
    )


sync_inventory = IncrementalSync(inventory)

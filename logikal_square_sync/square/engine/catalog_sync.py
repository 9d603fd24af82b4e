"""Square catalog (categories, items, variations) through SearchCatalogObjects.

Deleted objects are included and kept as tombstones (`is_deleted`). Square's
tombstones may carry little more than id, version and `updated_at`
(docs/square-api.md §7), so a tombstone updates `is_deleted`, `version`,
`updated_at` and `synced_at` and leaves every attribute it lacks (name, SKU,
price, parent) at the last value the warehouse knew.

The watermark is a time up to which every change is known to be in the
warehouse; the next run asks for changes after it minus `overlap_minutes`.
The results are unsorted, so a page's newest `updated_at` says nothing about
the pages still to come: the watermark moves only when the whole result has
been written, in the transaction of its last page. It never passes the run's
start minus the overlap, because edits made while the run reads may have
landed on pages already read. And if anything changed during the read (one
probe after the last page asks for changes since the run's start), it does
not move at all: whether a result set stays fixed while it is paged is
undocumented, and if it is re-evaluated, an edit can shift objects that did
not change onto pages already read. The next run reads that span again.
Every `full_refresh_days` (or with `full_refresh`) a run reads the whole
catalog, which repairs what an incremental run could not see. Since the
watermark moves only with the last page, pages are written several to a
transaction (`incremental_sync.py`), merged by id as upserts in turn would leave them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from logikal_square_sync.policies import CatalogPolicy
from logikal_square_sync.square.engine.client import Body, SquareClient
from logikal_square_sync.square.engine.incremental_object import IncrementalObject, Reading
from logikal_square_sync.square.engine.incremental_sync import IncrementalSync
from logikal_square_sync.square.engine.records import CatalogObject
from logikal_square_sync.square.engine.rows import Row, category_row, item_row, variation_row
from logikal_square_sync.square.engine.store import upsert_catalog
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.tables import (
    square_catalog_categories,
    square_catalog_items,
    square_catalog_variations,
)

WATERMARK = "square/catalog"
OBJECT_TYPES = ["ITEM", "ITEM_VARIATION", "CATEGORY"]  # variations must be asked for explicitly
# The tables written, in order, and how `rejected_records` names each table's objects (as a
# malformed record names them).
OBJECT_TYPES_BY_TABLE = {
    square_catalog_categories: "catalog category",
    square_catalog_items: "catalog item",
    square_catalog_variations: "catalog item variation",
}


def _rows_of_page(objects: list[CatalogObject], synced_at: datetime) -> dict[sa.Table, list[Row]]:
    by_table: dict[sa.Table, dict[str, Row]] = {table: {} for table in OBJECT_TYPES_BY_TABLE}

    def keep_newest(table: sa.Table, row: Row) -> None:
        # A variation comes both nested in its item and on its own: keep the newer copy.
        current = by_table[table].get(row["id"])
        if current is None or row["version"] > current["version"]:
            by_table[table][row["id"]] = row

    for obj in objects:
        kind = obj.type
        if kind == "CATEGORY":
            keep_newest(square_catalog_categories, category_row(obj, synced_at))
        elif kind == "ITEM":
            keep_newest(square_catalog_items, item_row(obj, synced_at))
            for variation in (obj.item_data.variations if obj.item_data else None) or ():
                keep_newest(square_catalog_variations, variation_row(variation, synced_at))
        elif kind == "ITEM_VARIATION":
            keep_newest(square_catalog_variations, variation_row(obj, synced_at))
    return {table: list(rows.values()) for table, rows in by_table.items()}


def _request(page_size: int, since: datetime | None) -> Body:
    request: Body = {"object_types": OBJECT_TYPES, "include_deleted_objects": True, "limit": page_size}
    if since is not None:
        request["begin_time"] = format_timestamp(since)
    return request


def _changed_since(client: SquareClient, moment: datetime) -> bool:
    """Whether any catalog object (deleted ones included) was modified after `moment`."""
    page = client.search_catalog_page(_request(1, moment))
    return bool(page.get("objects"))


def _covered(reading: Reading) -> datetime | None:
    """The newest change read, but never past the run's start minus the overlap, nor at all if
    anything changed while the run read."""
    if reading.changed_meanwhile or reading.newest is None:
        return None
    return min(reading.newest, reading.run_started - reading.overlap)


def catalog(policy: CatalogPolicy) -> IncrementalObject:
    """The catalog's parts of the incremental sync."""
    return IncrementalObject(
        watermark=WATERMARK,
        tables=OBJECT_TYPES_BY_TABLE,
        records="objects",
        newer_by="version",
        stamped_by="updated_at",
        overlap=timedelta(minutes=policy.overlap_minutes),
        request=_request,
        pages=SquareClient.search_catalog,
        rows=_rows_of_page,
        write=upsert_catalog,
        covered=_covered,
        changed_since=_changed_since,
        tombstones_start_batches=True,
        drops_copies_batched_before=True,
    )


sync_catalog = IncrementalSync(catalog)

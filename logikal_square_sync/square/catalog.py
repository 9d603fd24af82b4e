"""Square catalog (categories, items, variations) through SearchCatalogObjects.

Deleted objects are included and kept as tombstones (`is_deleted`). The search
results are unsorted, so a page's newest `updated_at` says nothing about the
pages still to come: the watermark advances only when the whole result has
been written, in the same transaction as its last page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.clock import utc_now
from logikal_square_sync.pages import with_last_flag
from logikal_square_sync.square.client import SquareClient
from logikal_square_sync.square.records import category_row, item_row, variation_row
from logikal_square_sync.square.report import SyncReport
from logikal_square_sync.square.timestamps import format_timestamp
from logikal_square_sync.warehouse.state import get_watermark, set_watermark
from logikal_square_sync.warehouse.tables import (
    square_catalog_categories,
    square_catalog_items,
    square_catalog_variations,
)
from logikal_square_sync.warehouse.upsert import upsert

WATERMARK = "square/catalog"
OBJECT_TYPES = ["ITEM", "ITEM_VARIATION", "CATEGORY"]  # variations must be asked for explicitly


def _rows_of_page(objects: list[dict[str, Any]], synced_at: datetime) -> dict[sa.Table, list[dict[str, Any]]]:
    by_table: dict[sa.Table, dict[str, dict[str, Any]]] = {
        square_catalog_categories: {},
        square_catalog_items: {},
        square_catalog_variations: {},
    }

    def keep_newest(table: sa.Table, row: dict[str, Any]) -> None:
        # A variation comes both nested in its item and on its own: keep the newer copy.
        current = by_table[table].get(row["id"])
        if current is None or row["version"] > current["version"]:
            by_table[table][row["id"]] = row

    for obj in objects:
        kind = obj.get("type")
        if kind == "CATEGORY":
            keep_newest(square_catalog_categories, category_row(obj, synced_at))
        elif kind == "ITEM":
            keep_newest(square_catalog_items, item_row(obj, synced_at))
            for variation in (obj.get("item_data") or {}).get("variations") or []:
                keep_newest(square_catalog_variations, variation_row(variation, synced_at))
        elif kind == "ITEM_VARIATION":
            keep_newest(square_catalog_variations, variation_row(obj, synced_at))
    return {table: list(rows.values()) for table, rows in by_table.items()}


def sync_catalog(
    client: SquareClient,
    engine: sa.Engine,
    *,
    page_size: int = 1000,
    overlap: timedelta = timedelta(minutes=5),
) -> SyncReport:
    with engine.connect() as conn:
        watermark = get_watermark(conn, WATERMARK)
    report = SyncReport(watermark_before=watermark, mode="incremental" if watermark else "full")

    def body() -> dict[str, Any]:
        request: dict[str, Any] = {
            "object_types": OBJECT_TYPES,
            "include_deleted_objects": True,
            "limit": page_size,
        }
        if watermark:
            request["begin_time"] = format_timestamp(datetime.fromisoformat(watermark) - overlap)
        return request

    newest = datetime.fromisoformat(watermark) if watermark else None
    for page, is_last in with_last_flag(client.search_catalog(body)):
        synced_at = utc_now()
        rows_by_table = _rows_of_page(page.get("objects") or [], synced_at)
        with engine.begin() as conn:
            for table, rows in rows_by_table.items():
                result = upsert(conn, table, rows, newer_by=("version",))
                report.inserted += result.inserted
                report.updated += result.updated
                written = set(result.written_keys)
                report.tombstoned += sum(1 for row in rows if row["is_deleted"] and (row["id"],) in written)
                for row in rows:
                    if newest is None or row["updated_at"] > newest:
                        newest = row["updated_at"]
            if is_last and newest is not None:
                # The last page: the whole result is in, so the watermark may move, atomically with it.
                report.watermark_after = format_timestamp(newest)
                set_watermark(conn, WATERMARK, report.watermark_after)
        report.pages += 1
    report.watermark_after = report.watermark_after or watermark
    return report.finish(client)

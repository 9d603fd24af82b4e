"""Square records (`records.py`, checked when decoded) turned into warehouse rows.

Every timestamp is stored in UTC; what a record lacks is NULL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.square.engine.records import CatalogObject, InventoryCount, Location, Order

# The name Square's callers knew; every source now raises the shared error.
MalformedRecord = MalformedRecordError

Row = dict[str, Any]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def location_row(location: Location, synced_at: datetime) -> Row:
    return {
        "id": location.id,
        "name": location.name,
        "status": location.status,
        "type": location.type,
        "timezone": location.timezone,
        "currency": location.currency,
        "merchant_id": location.merchant_id,
        "created_at": _utc(location.created_at),
        "synced_at": synced_at,
    }


def _catalog_common(obj: CatalogObject, synced_at: datetime) -> Row:
    return {
        "id": obj.id,
        "version": obj.version,
        "updated_at": obj.updated_at.astimezone(UTC),
        "is_deleted": bool(obj.is_deleted),
        "synced_at": synced_at,
    }


def category_row(obj: CatalogObject, synced_at: datetime) -> Row:
    data = obj.category_data
    parent = data.parent_category if data is not None else None
    return {
        **_catalog_common(obj, synced_at),
        "name": data.name if data is not None else None,
        "parent_category_id": parent.id if parent is not None else None,
    }


def item_row(obj: CatalogObject, synced_at: datetime) -> Row:
    data = obj.item_data
    if data is None:
        return {**_catalog_common(obj, synced_at), "name": None, "category_id": None, "is_archived": None}
    # `category_id` was deprecated on 2023-12-13 in favour of `categories`; old items still carry it.
    category_id = data.categories[0].id if data.categories else data.category_id
    return {
        **_catalog_common(obj, synced_at),
        "name": data.name,
        "category_id": category_id,
        "is_archived": data.is_archived,
    }


def variation_row(obj: CatalogObject, synced_at: datetime) -> Row:
    data = obj.item_variation_data
    price = data.price_money if data is not None else None
    return {
        **_catalog_common(obj, synced_at),
        "item_id": data.item_id if data is not None else None,
        "name": data.name if data is not None else None,
        "sku": data.sku if data is not None else None,
        "price_amount": price.amount if price is not None else None,
        "price_currency": price.currency if price is not None else None,
    }


def order_rows(order: Order, synced_at: datetime) -> tuple[Row, list[Row]]:
    """The order's row and its line items' rows."""
    total = order.total_money
    row = {
        "id": order.id,
        "location_id": order.location_id,
        "state": order.state,
        "created_at": order.created_at.astimezone(UTC),
        "updated_at": order.updated_at.astimezone(UTC),
        "closed_at": _utc(order.closed_at),
        # NULL (no version) sorts lowest.
        "version": order.version,
        "total_amount": total.amount if total is not None else None,
        "total_currency": total.currency if total is not None else None,
        "synced_at": synced_at,
    }
    items = []
    for position, item in enumerate(order.line_items or ()):
        base = item.base_price_money
        item_total = item.total_money
        items.append(
            {
                "order_id": order.id,
                # uid is optional in the spec; the position keeps the key stable for one order version.
                "uid": item.uid or f"#{position}",
                "name": item.name,
                "quantity": item.quantity,
                "catalog_object_id": item.catalog_object_id,
                "base_price_amount": base.amount if base is not None else None,
                "total_amount": item_total.amount if item_total is not None else None,
                "currency": item_total.currency if item_total is not None else None,
            }
        )
    return row, items


def inventory_row(count: InventoryCount, synced_at: datetime) -> Row:
    return {
        "catalog_object_id": count.catalog_object_id,
        "location_id": count.location_id,
        "state": count.state,
        "catalog_object_type": count.catalog_object_type,
        "quantity": count.quantity,
        "calculated_at": count.calculated_at.astimezone(UTC),
        "synced_at": synced_at,
    }

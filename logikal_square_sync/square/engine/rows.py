"""Square records (`records.py`, checked when decoded) turned into warehouse rows.

Every timestamp is stored in UTC; what a record lacks is NULL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from msgspec.structs import asdict

from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.square.engine.records import (
    CatalogObject,
    CatalogReference,
    CategoryData,
    InventoryCount,
    ItemData,
    Location,
    Money,
    Order,
    VariationData,
)

# The name Square's callers knew; every source now raises the shared error.
MalformedRecord = MalformedRecordError

Row = dict[str, Any]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def location_row(location: Location, synced_at: datetime) -> Row:
    # A location's fields are the columns of `square_locations`.
    return {**asdict(location), "created_at": _utc(location.created_at), "synced_at": synced_at}


def _catalog_common(obj: CatalogObject, synced_at: datetime) -> Row:
    return {
        "id": obj.id,
        "version": obj.version,
        "updated_at": obj.updated_at.astimezone(UTC),
        "is_deleted": bool(obj.is_deleted),
        "synced_at": synced_at,
    }


# What a record lacks reads as the empty record: every field of it NULL.
_NO_MONEY = Money()
_NO_REFERENCE = CatalogReference()
_NO_CATEGORY = CategoryData()
_NO_ITEM = ItemData()
_NO_VARIATION = VariationData()


def category_row(obj: CatalogObject, synced_at: datetime) -> Row:
    data = obj.category_data or _NO_CATEGORY
    parent = data.parent_category or _NO_REFERENCE
    return {**_catalog_common(obj, synced_at), "name": data.name, "parent_category_id": parent.id}


def item_row(obj: CatalogObject, synced_at: datetime) -> Row:
    data = obj.item_data or _NO_ITEM
    # `category_id` was deprecated on 2023-12-13 in favour of `categories`; old items still carry it.
    category_id = data.categories[0].id if data.categories else data.category_id
    common = _catalog_common(obj, synced_at)
    return {**common, "name": data.name, "category_id": category_id, "is_archived": data.is_archived}


def variation_row(obj: CatalogObject, synced_at: datetime) -> Row:
    data = obj.item_variation_data or _NO_VARIATION
    price = data.price_money or _NO_MONEY
    return {
        **_catalog_common(obj, synced_at),
        "item_id": data.item_id,
        "name": data.name,
        "sku": data.sku,
        "price_amount": price.amount,
        "price_currency": price.currency,
    }


def order_rows(order: Order, synced_at: datetime) -> tuple[Row, list[Row]]:
    """The order's row and its line items' rows."""
    total = order.total_money or _NO_MONEY
    row = {
        "id": order.id,
        "location_id": order.location_id,
        "state": order.state,
        "created_at": order.created_at.astimezone(UTC),
        "updated_at": order.updated_at.astimezone(UTC),
        "closed_at": _utc(order.closed_at),
        # NULL (no version) sorts lowest.
        "version": order.version,
        "total_amount": total.amount,
        "total_currency": total.currency,
        "synced_at": synced_at,
    }
    items = []
    for position, item in enumerate(order.line_items or ()):
        base = item.base_price_money or _NO_MONEY
        item_total = item.total_money or _NO_MONEY
        items.append(
            {
                "order_id": order.id,
                # uid is optional in the spec; the position keeps the key stable for one order version.
                "uid": item.uid or f"#{position}",
                "name": item.name,
                "quantity": item.quantity,
                "catalog_object_id": item.catalog_object_id,
                "base_price_amount": base.amount,
                "total_amount": item_total.amount,
                "currency": item_total.currency,
            }
        )
    return row, items


def inventory_row(count: InventoryCount, synced_at: datetime) -> Row:
    # A count's fields are the columns of `square_inventory_counts`.
    return {**asdict(count), "calculated_at": count.calculated_at.astimezone(UTC), "synced_at": synced_at}

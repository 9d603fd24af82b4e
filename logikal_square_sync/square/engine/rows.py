"""Turns Square API records into warehouse rows, rejecting malformed ones by name.

A malformed record fails the sync with an error that names the record and the
field; the page it came in is not written, and everything committed before it
stays as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class MalformedRecord(ValueError):
    def __init__(self, kind: str, record: Any, problem: str) -> None:
        record_id = record.get("id") if isinstance(record, dict) else None
        if record_id and isinstance(record_id, str):
            name = f"{kind} {record_id!r}"
        else:
            name = f"{kind} (no id; record starts {str(record)[:120]})"
        super().__init__(f"malformed Square {name}: {problem}")


def _require(record: dict[str, Any], field: str, kind: str) -> Any:
    value = record.get(field)
    if value is None or value == "":
        raise MalformedRecord(kind, record, f"missing required field '{field}'")
    return value


def _text(record: dict[str, Any], field: str, kind: str, *, required: bool = False) -> str | None:
    value = _require(record, field, kind) if required else record.get(field)
    if value is not None and not isinstance(value, str):
        raise MalformedRecord(kind, record, f"field '{field}' should be a string, got {value!r}")
    return value


def parse_timestamp(value: Any, field: str, record: dict[str, Any], kind: str) -> datetime:
    """RFC 3339 with whole seconds or milliseconds (Square sends both)."""
    if not isinstance(value, str):
        raise MalformedRecord(kind, record, f"field '{field}' should be an RFC 3339 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problem = f"field '{field}' is not an RFC 3339 timestamp: {value!r}"
        raise MalformedRecord(kind, record, problem) from None
    if parsed.tzinfo is None:
        raise MalformedRecord(kind, record, f"field '{field}' has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def _timestamp(record: dict[str, Any], field: str, kind: str, *, required: bool = True) -> datetime | None:
    value = record.get(field)
    if value is None and not required:
        return None
    if value is None:
        raise MalformedRecord(kind, record, f"missing required field '{field}'")
    return parse_timestamp(value, field, record, kind)


def order_time(order: Any, field: str) -> datetime:
    """An order's `created_at` or `updated_at`; a malformed order fails naming it and the field.

    A typed order (`order_structs.Order`) was checked when decoded.
    """
    moment = getattr(order, field, None)
    if isinstance(moment, datetime):
        return moment.astimezone(UTC)
    if not isinstance(order, dict):
        raise MalformedRecord("order", order, "is not an object")
    moment = _timestamp(order, field, "order")
    assert moment is not None
    return moment


def _integer(record: dict[str, Any], field: str, kind: str, value: Any = None) -> int | None:
    value = record.get(field) if value is None else value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecord(kind, record, f"field '{field}' should be an integer, got {value!r}")
    return value


def _money(record: dict[str, Any], field: str, kind: str) -> tuple[int | None, str | None]:
    money = record.get(field)
    if money is None:
        return None, None
    if not isinstance(money, dict):
        raise MalformedRecord(kind, record, f"field '{field}' should be a Money object, got {money!r}")
    return _integer(record, f"{field}.amount", kind, money.get("amount")), money.get("currency")


def _quantity(record: dict[str, Any], field: str, kind: str) -> Decimal:
    """Square sends quantities as decimal strings."""
    value = _require(record, field, kind)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedRecord(kind, record, f"field '{field}' should be a decimal string, got {value!r}")
    try:
        quantity = Decimal(str(value))
    except InvalidOperation:
        quantity = Decimal("nan")
    if not quantity.is_finite():
        raise MalformedRecord(kind, record, f"field '{field}' is not a decimal: {value!r}")
    return quantity


def location_row(location: dict[str, Any], synced_at: datetime) -> dict[str, Any]:
    kind = "location"
    return {
        "id": _text(location, "id", kind, required=True),
        "name": _text(location, "name", kind),
        "status": _text(location, "status", kind),
        "type": _text(location, "type", kind),
        "timezone": _text(location, "timezone", kind),
        "currency": _text(location, "currency", kind),
        "merchant_id": _text(location, "merchant_id", kind),
        "created_at": _timestamp(location, "created_at", kind, required=False),
        "synced_at": synced_at,
    }


def _catalog_common(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    version = _integer(obj, "version", kind)
    if version is None:
        raise MalformedRecord(kind, obj, "missing required field 'version'")
    return {
        "id": _text(obj, "id", kind, required=True),
        "version": version,
        "updated_at": _timestamp(obj, "updated_at", kind),
        "is_deleted": bool(obj.get("is_deleted", False)),
    }


def category_row(obj: dict[str, Any], synced_at: datetime) -> dict[str, Any]:
    data = obj.get("category_data") or {}
    parent = data.get("parent_category") or {}
    return {
        **_catalog_common(obj, "catalog category"),
        "name": data.get("name"),
        "parent_category_id": parent.get("id") if isinstance(parent, dict) else None,
        "synced_at": synced_at,
    }


def item_row(obj: dict[str, Any], synced_at: datetime) -> dict[str, Any]:
    data = obj.get("item_data") or {}
    categories = data.get("categories") or []
    # `category_id` was deprecated on 2023-12-13 in favour of `categories`; old items still carry it.
    category_id = categories[0].get("id") if categories else data.get("category_id")
    return {
        **_catalog_common(obj, "catalog item"),
        "name": data.get("name"),
        "category_id": category_id,
        "is_archived": data.get("is_archived"),
        "synced_at": synced_at,
    }


def variation_row(obj: dict[str, Any], synced_at: datetime) -> dict[str, Any]:
    kind = "catalog item variation"
    data = obj.get("item_variation_data") or {}
    amount, currency = _money(data, "price_money", kind)
    return {
        **_catalog_common(obj, kind),
        "item_id": data.get("item_id"),
        "name": data.get("name"),
        "sku": data.get("sku"),
        "price_amount": amount,
        "price_currency": currency,
        "synced_at": synced_at,
    }


def order_rows(order: dict[str, Any], synced_at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = "order"
    order_id = _text(order, "id", kind, required=True)
    total_amount, total_currency = _money(order, "total_money", kind)
    row = {
        "id": order_id,
        "location_id": _text(order, "location_id", kind, required=True),
        "state": _text(order, "state", kind, required=True),
        "created_at": _timestamp(order, "created_at", kind),
        "updated_at": _timestamp(order, "updated_at", kind),
        "closed_at": _timestamp(order, "closed_at", kind, required=False),
        # Orders not created through the API may have no version (Square docs): NULL sorts lowest.
        "version": _integer(order, "version", kind),
        "total_amount": total_amount,
        "total_currency": total_currency,
        "synced_at": synced_at,
    }
    line_items = order.get("line_items") or []
    if not isinstance(line_items, list):
        raise MalformedRecord(kind, order, f"field 'line_items' should be a list, got {line_items!r}")
    items = []
    for position, item in enumerate(line_items):
        if not isinstance(item, dict):
            raise MalformedRecord(kind, order, f"line_items[{position}] is not an object")
        item_kind = f"order {order_id!r} line item {position}"
        base_amount, _ = _money(item, "base_price_money", item_kind)
        total, currency = _money(item, "total_money", item_kind)
        items.append(
            {
                "order_id": order_id,
                # uid is optional in the spec; the position keeps the key stable for one order version.
                "uid": item.get("uid") or f"#{position}",
                "name": item.get("name"),
                "quantity": _quantity(item, "quantity", item_kind),
                "catalog_object_id": item.get("catalog_object_id"),
                "base_price_amount": base_amount,
                "total_amount": total,
                "currency": currency,
            }
        )
    return row, items


def inventory_row(count: dict[str, Any], synced_at: datetime) -> dict[str, Any]:
    kind = "inventory count"
    return {
        "catalog_object_id": _text(count, "catalog_object_id", kind, required=True),
        "location_id": _text(count, "location_id", kind, required=True),
        "state": _text(count, "state", kind, required=True),
        "catalog_object_type": _text(count, "catalog_object_type", kind),
        "quantity": _quantity(count, "quantity", kind),
        "calculated_at": _timestamp(count, "calculated_at", kind),
        "synced_at": synced_at,
    }

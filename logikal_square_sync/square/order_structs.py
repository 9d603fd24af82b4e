"""SearchOrders pages decoded straight into typed orders (msgspec), with the dict path as the judge.

Decoding a page into dicts and then checking every field in Python was most
of a sync's CPU (README "Benchmarks"): msgspec decodes only the fields the
warehouse keeps, checks their JSON types in C and parses the timestamps
there too. What it cannot say is what the dict path says: which record and
field is malformed and how. So anything the typed decoder refuses, and any
value it accepts that the dict path would refuse (an empty id, a timestamp
without UTC offset, a quantity that is no decimal), sends the whole page
down the dict path (`records.order_rows`), which accepts it or fails naming
the record and the field. The two paths give identical rows for every order
both accept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from logikal_square_sync.square.typed_pages import aware, decimal_quantity, decode_typed_page, page_decoder


class Money(msgspec.Struct):
    amount: int | None = None
    currency: str | None = None


class LineItem(msgspec.Struct):
    quantity: str | int | None = None
    uid: str | None = None
    name: str | None = None
    catalog_object_id: str | None = None
    base_price_money: Money | None = None
    total_money: Money | None = None


class Order(msgspec.Struct):
    id: str | None = None
    location_id: str | None = None
    state: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    version: int | None = None
    total_money: Money | None = None
    line_items: list[LineItem] | None = None


_DECODER = page_decoder("orders", Order)


def _plain(order: Order) -> bool:
    """Whether the dict path would accept this order as it is (else it must judge the page)."""
    if not (order.id and order.location_id and order.state):
        return False
    if not (aware(order.created_at) and aware(order.updated_at)):
        return False
    if order.closed_at is not None and order.closed_at.tzinfo is None:
        return False
    return all(decimal_quantity(item.quantity) is not None for item in order.line_items or ())


def decode_orders_page(raw: bytes) -> dict[str, Any]:
    """A SearchOrders page: typed `Order`s when every order is plain, else the page as dicts.

    Raises ValueError (as `json.loads` does) when the body is no JSON at all.
    """
    return decode_typed_page(raw, _DECODER, "orders", _plain, "SearchOrders")


def order_struct_rows(order: Order, synced_at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rows of a plain order: what `records.order_rows` gives for the same JSON."""
    total = order.total_money
    closed_at = order.closed_at
    row = {
        "id": order.id,
        "location_id": order.location_id,
        "state": order.state,
        "created_at": order.created_at.astimezone(UTC),  # type: ignore[union-attr]
        "updated_at": order.updated_at.astimezone(UTC),  # type: ignore[union-attr]
        "closed_at": closed_at.astimezone(UTC) if closed_at is not None else None,
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
                "uid": item.uid or f"#{position}",
                "name": item.name,
                "quantity": decimal_quantity(item.quantity),
                "catalog_object_id": item.catalog_object_id,
                "base_price_amount": base.amount if base is not None else None,
                "total_amount": item_total.amount if item_total is not None else None,
                "currency": item_total.currency if item_total is not None else None,
            }
        )
    return row, items

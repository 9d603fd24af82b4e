"""Square API records as msgspec Structs: what each record must be, checked while it is decoded.

The style of every source (`logikal_square_sync/common/records.py`): field types and
`msgspec.Meta` constraints (ids not empty, timestamps with a UTC offset,
quantities decimal), `__post_init__` where a check needs Python (a decimal
that is NaN or infinite). Pages decode straight from the response bytes
into these Structs, only the fields the warehouse keeps, in C: decoding was
most of a sync's CPU (docs/benchmarks.md). A record that fails is named
by a `MalformedRecordError` (the record and the field); the page decoders
leave it out of their page and hand it on under `rejected`, as a
`Rejection` for `rejected_records`, so the rest of the page is written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from logikal_square_sync.common.records import Decoder, Refused, field_error, json_text
from logikal_square_sync.warehouse.quarantine import Rejection

Body = dict[str, Any]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
# RFC 3339 with whole seconds or milliseconds (Square sends both), always with an offset.
Moment = Annotated[datetime, msgspec.Meta(tz=True)]


def _finite(quantity: Decimal) -> None:
    # Decimal takes "NaN" and "Infinity"; no count or line item has that many.
    if not quantity.is_finite():
        raise field_error("quantity", f"not a finite decimal: {str(quantity)!r}")


class Money(msgspec.Struct):
    amount: int | None = None
    currency: str | None = None


class Location(msgspec.Struct):
    id: NonEmpty
    name: str | None = None
    status: str | None = None
    type: str | None = None
    timezone: str | None = None
    currency: str | None = None
    merchant_id: str | None = None
    created_at: Moment | None = None


class CatalogReference(msgspec.Struct):
    id: str | None = None


class CategoryData(msgspec.Struct):
    name: str | None = None
    parent_category: CatalogReference | None = None


class ItemData(msgspec.Struct):
    name: str | None = None
    categories: list[CatalogReference] | None = None
    # Deprecated on 2023-12-13 in favour of `categories`; old items still carry it.
    category_id: str | None = None
    is_archived: bool | None = None
    variations: list[CatalogObject] | None = None


class VariationData(msgspec.Struct):
    item_id: str | None = None
    name: str | None = None
    sku: str | None = None
    price_money: Money | None = None


class CatalogObject(msgspec.Struct):
    """A category, item or variation; a tombstone may carry little more than id, version and time."""

    id: NonEmpty
    version: int
    updated_at: Moment
    type: str | None = None
    is_deleted: bool | None = None
    category_data: CategoryData | None = None
    item_data: ItemData | None = None
    item_variation_data: VariationData | None = None


class InventoryCount(msgspec.Struct):
    catalog_object_id: NonEmpty
    location_id: NonEmpty
    state: NonEmpty
    quantity: Decimal
    calculated_at: Moment
    catalog_object_type: str | None = None

    def __post_init__(self) -> None:
        _finite(self.quantity)


class LineItem(msgspec.Struct):
    quantity: Decimal
    uid: str | None = None
    name: str | None = None
    catalog_object_id: str | None = None
    base_price_money: Money | None = None
    total_money: Money | None = None

    def __post_init__(self) -> None:
        _finite(self.quantity)


class Order(msgspec.Struct):
    id: NonEmpty
    location_id: NonEmpty
    state: NonEmpty
    created_at: Moment
    updated_at: Moment
    closed_at: Moment | None = None
    # Orders not created through the API may have no version (Square docs).
    version: int | None = None
    total_money: Money | None = None
    line_items: list[LineItem] | None = None


class OrderEntry(msgspec.Struct):
    """What SearchOrders gives with `return_entries`: which orders exist, not their contents."""

    order_id: NonEmpty
    location_id: str | None = None
    version: int | None = None


class _Locations(msgspec.Struct):
    locations: list[Location] | None = None


class _CatalogPage(msgspec.Struct):
    objects: list[CatalogObject] | None = None
    cursor: str | None = None


class _InventoryPage(msgspec.Struct):
    counts: list[InventoryCount] | None = None
    cursor: str | None = None


class _OrdersPage(msgspec.Struct):
    orders: list[Order] | None = None
    cursor: str | None = None


class _OrderEntriesPage(msgspec.Struct):
    order_entries: list[OrderEntry] | None = None
    cursor: str | None = None


CATALOG_KINDS = {
    "CATEGORY": "catalog category",
    "ITEM": "catalog item",
    "ITEM_VARIATION": "catalog item variation",
}


def _catalog_kind(record: dict[str, Any]) -> str:
    return CATALOG_KINDS.get(record.get("type"), "catalog object")  # type: ignore[arg-type]


_LOCATIONS = Decoder(_Locations, "Square", "location")
_CATALOG = Decoder(_CatalogPage, "Square", "catalog object", kind_of=_catalog_kind)
_INVENTORY = Decoder(_InventoryPage, "Square", "inventory count")
_ORDERS = Decoder(_OrdersPage, "Square", "order")
_ORDER_ENTRIES = Decoder(_OrderEntriesPage, "Square", "order entry", id_field="order_id")


# What a page carries besides its records: those that failed, as `Rejection`s.
REJECTED = "rejected"
_COUNT_KEY = ("catalog_object_id", "location_id", "state")


# The prefix of the id a record without one is filed under in `rejected_records`.
NO_ID = "no id: "


def record_id(refused: Refused) -> str:
    """The id `rejected_records` files a refused record under: as the sync would name it when written."""
    record = refused.record if isinstance(refused.record, dict) else {}
    if refused.error.record_id:
        return refused.error.record_id
    if all(isinstance(record.get(key), str) for key in _COUNT_KEY):
        return "/".join(record[key] for key in _COUNT_KEY)  # an inventory count (`row_batches.record_id`)
    return NO_ID + json_text(refused.record)[:120]


def rejections(refused: list[Refused]) -> list[Rejection]:
    return [
        Rejection(r.error.source, r.error.kind, record_id(r), str(r.error), json_text(r.record))
        for r in refused
    ]


def _body(key: str, records: list[Any] | None, cursor: str | None, refused: list[Refused]) -> Body:
    # Pages stay dicts of typed records: the client's paging reads `cursor` and may trim the records.
    body: Body = {key: records or []}
    if cursor:
        body["cursor"] = cursor
    if refused:
        body[REJECTED] = rejections(refused)
    return body


def locations_of(answer: Body) -> tuple[list[Location], list[Rejection]]:
    """A ListLocations answer (already decoded: it comes in one small response) as typed locations,
    and the locations that failed."""
    decoded, refused = _LOCATIONS.convert_salvaging(answer, "locations", call="ListLocations")
    return decoded.locations or [], rejections(refused)


def decode_catalog_page(raw: bytes) -> Body:
    """A SearchCatalogObjects page: typed `CatalogObject`s under `objects`, and the cursor.

    Raises ValueError (as `json.loads` does) when the body is no JSON at all.
    """
    page, refused = _CATALOG.decode_salvaging(raw, "objects", call="SearchCatalogObjects")
    return _body("objects", page.objects, page.cursor, refused)


def decode_inventory_page(raw: bytes) -> Body:
    """A BatchRetrieveInventoryCounts page: typed `InventoryCount`s under `counts`, and the cursor."""
    page, refused = _INVENTORY.decode_salvaging(raw, "counts", call="BatchRetrieveInventoryCounts")
    return _body("counts", page.counts, page.cursor, refused)


def decode_orders_page(raw: bytes) -> Body:
    """A SearchOrders page: typed `Order`s under `orders`, and the cursor."""
    page, refused = _ORDERS.decode_salvaging(raw, "orders", call="SearchOrders")
    return _body("orders", page.orders, page.cursor, refused)


def decode_order_entries_page(raw: bytes) -> Body:
    """A SearchOrders page with `return_entries`: typed `OrderEntry`s, and the cursor."""
    # Only counted (completeness.py), never written: a bad entry fails the check naming it.
    page = _ORDER_ENTRIES.decode(raw, call="SearchOrders")
    return _body("order_entries", page.order_entries, page.cursor, [])

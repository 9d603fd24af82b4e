"""Square pages decode into typed records; rows come from them; a malformed record is named with its field."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.square.engine.records import (
    _ORDERS,
    REJECTED,
    Order,
    decode_catalog_page,
    decode_inventory_page,
    decode_order_entries_page,
    decode_orders_page,
    locations_of,
)
from logikal_square_sync.square.engine.rows import (
    MalformedRecord,
    category_row,
    inventory_row,
    item_row,
    location_row,
    order_rows,
    variation_row,
)
from logikal_square_sync.warehouse.quarantine import Rejection

SYNCED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def refusal(body: dict[str, Any]) -> Rejection:
    """The one record a page decoder left out, as it goes to `rejected_records`."""
    (rejection,) = body[REJECTED]
    return rejection


ORDER: dict[str, Any] = {
    "id": "ORDER-1",
    "location_id": "LOC-1",
    "state": "COMPLETED",
    "version": 3,
    "created_at": "2026-11-02T12:56:35.340Z",
    "updated_at": "2026-11-02T14:57:42+02:00",
    "closed_at": "2026-11-02T12:57:42.333Z",
    "total_money": {"amount": 3448, "currency": "USD"},
    "source": {"name": "Square Point of Sale"},
    "line_items": [
        {
            "uid": "LI-1",
            "catalog_object_id": "VAR-1",
            "name": "Wild Espresso",
            "quantity": "1.5",
            "base_price_money": {"amount": 1025, "currency": "USD"},
            "total_money": {"amount": 1110, "currency": "USD"},
        },
        {"quantity": 2, "name": None},
    ],
}


def page(*orders: dict[str, Any], cursor: str | None = "CURSOR") -> bytes:
    body: dict[str, Any] = {"orders": list(orders)}
    if cursor:
        body["cursor"] = cursor
    return msgspec.json.encode(body)


def test_a_page_decodes_into_typed_orders_and_their_rows() -> None:
    minimal = {k: ORDER[k] for k in ("id", "location_id", "state", "created_at", "updated_at")}
    decoded = decode_orders_page(page(ORDER, minimal))
    assert decoded["cursor"] == "CURSOR"
    assert all(isinstance(order, Order) for order in decoded["orders"])
    row, items = order_rows(decoded["orders"][0], SYNCED_AT)
    assert row == {
        "id": "ORDER-1",
        "location_id": "LOC-1",
        "state": "COMPLETED",
        "created_at": datetime(2026, 11, 2, 12, 56, 35, 340000, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 2, 12, 57, 42, tzinfo=UTC),  # +02:00 stored as UTC
        "closed_at": datetime(2026, 11, 2, 12, 57, 42, 333000, tzinfo=UTC),
        "version": 3,
        "total_amount": 3448,
        "total_currency": "USD",
        "synced_at": SYNCED_AT,
    }
    assert row["updated_at"].utcoffset() == timedelta(0)
    assert items == [
        {
            "order_id": "ORDER-1",
            "uid": "LI-1",
            "name": "Wild Espresso",
            "quantity": Decimal("1.5"),
            "catalog_object_id": "VAR-1",
            "base_price_amount": 1025,
            "total_amount": 1110,
            "currency": "USD",
        },
        {
            "order_id": "ORDER-1",
            "uid": "#1",  # no uid: the position keeps the key stable
            "name": None,
            "quantity": Decimal(2),
            "catalog_object_id": None,
            "base_price_amount": None,
            "total_amount": None,
            "currency": None,
        },
    ]
    row, items = order_rows(decoded["orders"][1], SYNCED_AT)
    assert (row["closed_at"], row["version"], row["total_amount"], items) == (None, None, None, [])
    assert "cursor" not in decode_orders_page(page(ORDER, cursor=None))
    assert decode_orders_page(b"{}") == {"orders": []}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("id",), "", r"order \(no id; record starts \{.*\): field 'id': Expected `str` of length >= 1"),
        (("id",), None, r"order \(no id; record starts \{.*\): field 'id': missing \(null\)"),
        (("state",), None, r"order 'ORDER-1': field 'state': missing \(null\)"),
        (("updated_at",), "2026-11-02T12:57:42", r"field 'updated_at': .*timezone.*'2026-11-02T12:57:42'"),
        (("created_at",), "yesterday-ish", r"field 'created_at': Invalid RFC3339 .*'yesterday-ish'"),
        (("version",), True, r"field 'version': Expected `int \| null`, got `bool` \(value True\)"),
        (("total_money",), "lots", r"field 'total_money': Expected `object \| null`, got `str`"),
        (("total_money", "amount"), 1.5, r"field 'total_money.amount': Expected `int \| null`, got `float`"),
        (
            ("line_items", 0, "quantity"),
            "many",
            r"field 'line_items\[0\].quantity': Invalid decimal .*'many'",
        ),
        (("line_items", 1, "quantity"), "NaN", r"field 'line_items\[1\].quantity': not a finite decimal"),
        (("line_items", 1, "quantity"), None, r"field 'line_items\[1\].quantity': missing \(null\)"),
        (("line_items", 1), "oops", r"field 'line_items\[1\]': Expected `object`, got `str`"),
        (("line_items", 0, "name"), 42, r"field 'line_items\[0\].name': Expected `str \| null`, got `int`"),
    ],
)
def test_a_malformed_order_is_named_with_its_field(path, value, message) -> None:
    bad = copy.deepcopy(ORDER)
    target = bad
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    named = message if message.startswith("order") else "order 'ORDER-1': " + message
    body = decode_orders_page(page(ORDER, bad))
    assert len(body["orders"]) == 1  # the good one: the bad one is left out, refused
    assert re.match(r"^SearchOrders: malformed Square " + named, refusal(body).reason)


def test_the_refusal_names_source_kind_record_and_field_and_keeps_the_record() -> None:
    bad = copy.deepcopy(ORDER)
    del bad["location_id"]
    rejection = refusal(decode_orders_page(page(ORDER, bad)))
    assert (rejection.source, rejection.object_type, rejection.record_id) == ("Square", "order", "ORDER-1")
    assert rejection.reason == "SearchOrders: malformed Square order 'ORDER-1': field 'location_id': missing"
    assert msgspec.json.decode(rejection.raw_json) == bad


def test_the_error_names_source_kind_record_and_field() -> None:
    bad = copy.deepcopy(ORDER)
    del bad["location_id"]
    with pytest.raises(MalformedRecordError) as raised:
        _ORDERS.decode(page(ORDER, bad), call="SearchOrders")
    error = raised.value
    assert (error.source, error.kind, error.record_id, error.field, error.call) == (
        "Square",
        "order",
        "ORDER-1",
        "location_id",
        "SearchOrders",
    )
    assert str(error) == "SearchOrders: malformed Square order 'ORDER-1': field 'location_id': missing"
    assert MalformedRecord is MalformedRecordError and isinstance(error, ValueError)


def test_an_answer_that_is_not_a_page_is_named_as_such() -> None:
    with pytest.raises(
        MalformedRecordError, match=r"malformed Square order answer: field 'orders': Expected"
    ):
        decode_orders_page(b'{"orders": "none"}')


def test_a_body_that_is_no_json_raises_a_json_decode_error() -> None:
    # JSONDecodeError, as json.loads raises it: the HTTP client retries such a body as cut short.
    with pytest.raises(json.JSONDecodeError):
        decode_orders_page(page(ORDER)[:-20])


MOMENT = "2026-11-02T12:00:00Z"
CATEGORY = {
    "type": "CATEGORY",
    "id": "CAT-1",
    "version": 5,
    "updated_at": MOMENT,
    "category_data": {"name": "Coffee", "parent_category": {"id": "CAT-0"}},
}
VARIATION = {
    "type": "ITEM_VARIATION",
    "id": "VAR-1",
    "version": 7,
    "updated_at": MOMENT,
    "is_deleted": False,
    "item_variation_data": {
        "item_id": "ITEM-1",
        "name": "Large",
        "sku": "L-1",
        "price_money": {"amount": 450, "currency": "USD"},
    },
}
ITEM = {
    "type": "ITEM",
    "id": "ITEM-1",
    "version": 6,
    "updated_at": MOMENT,
    "item_data": {"name": "Latte", "categories": [{"id": "CAT-1"}], "variations": [VARIATION]},
}


def test_catalog_objects_decode_into_typed_objects_and_their_rows() -> None:
    tombstone = {"type": "ITEM", "id": "ITEM-2", "version": 9, "updated_at": MOMENT, "is_deleted": True}
    old_item = {**ITEM, "id": "ITEM-3", "item_data": {"name": "Mocha", "category_id": "CAT-9"}}
    other = {"type": "TAX", "id": "TAX-1", "version": 1, "updated_at": MOMENT}
    body = decode_catalog_page(msgspec.json.encode({"objects": [CATEGORY, ITEM, tombstone, old_item, other]}))
    category, item, deleted, old, tax = body["objects"]
    stamp = {"updated_at": datetime(2026, 11, 2, 12, tzinfo=UTC), "synced_at": SYNCED_AT}
    assert category_row(category, SYNCED_AT) == {
        **stamp,
        "id": "CAT-1",
        "version": 5,
        "is_deleted": False,
        "name": "Coffee",
        "parent_category_id": "CAT-0",
    }
    assert item_row(item, SYNCED_AT) == {
        **stamp,
        "id": "ITEM-1",
        "version": 6,
        "is_deleted": False,
        "name": "Latte",
        "category_id": "CAT-1",
        "is_archived": None,
    }
    assert item_row(deleted, SYNCED_AT)["is_deleted"] is True
    assert item_row(deleted, SYNCED_AT)["name"] is None
    assert item_row(old, SYNCED_AT)["category_id"] == "CAT-9"  # the deprecated field still read
    assert item.item_data is not None and item.item_data.variations is not None
    assert variation_row(item.item_data.variations[0], SYNCED_AT) == {
        **stamp,
        "id": "VAR-1",
        "version": 7,
        "is_deleted": False,
        "item_id": "ITEM-1",
        "name": "Large",
        "sku": "L-1",
        "price_amount": 450,
        "price_currency": "USD",
    }
    assert tax.type == "TAX"


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([{**CATEGORY, "version": None}], r"catalog category 'CAT-1': field 'version': missing \(null\)"),
        (
            [{**VARIATION, "updated_at": "soon"}],
            r"catalog item variation 'VAR-1': field 'updated_at': Invalid",
        ),
        (
            [CATEGORY, {**ITEM, "item_data": {"variations": [{**VARIATION, "id": ""}]}}],
            r"catalog item 'ITEM-1': field 'item_data.variations\[0\].id': Expected `str` of length >= 1",
        ),
        (
            [{"type": "ITEM", "version": 1, "updated_at": MOMENT}],
            r"catalog item \(no id; .*field 'id': missing",
        ),
    ],
)
def test_a_malformed_catalog_object_is_named_by_its_type_id_and_field(objects, message) -> None:
    body = decode_catalog_page(msgspec.json.encode({"objects": objects, "cursor": "C"}))
    assert len(body["objects"]) == len(objects) - 1
    assert re.match(r"^SearchCatalogObjects: malformed Square " + message, refusal(body).reason)


COUNT = {
    "catalog_object_id": "VAR-1",
    "catalog_object_type": "ITEM_VARIATION",
    "state": "IN_STOCK",
    "location_id": "LOC-1",
    "quantity": "22.5",
    "calculated_at": "2026-11-02T13:00:00.123+01:00",
}


def test_inventory_counts_decode_into_typed_counts_and_their_rows() -> None:
    body = decode_inventory_page(msgspec.json.encode({"counts": [COUNT], "cursor": "NEXT"}))
    assert body["cursor"] == "NEXT"
    assert inventory_row(body["counts"][0], SYNCED_AT) == {
        "catalog_object_id": "VAR-1",
        "location_id": "LOC-1",
        "state": "IN_STOCK",
        "catalog_object_type": "ITEM_VARIATION",
        "quantity": Decimal("22.5"),
        "calculated_at": datetime(2026, 11, 2, 12, 0, 0, 123000, tzinfo=UTC),
        "synced_at": SYNCED_AT,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": "Infinity"}, r"field 'quantity': not a finite decimal: 'Infinity'"),
        ({"quantity": True}, r"field 'quantity': Expected `decimal`, got `bool`"),
        ({"state": ""}, r"field 'state': Expected `str` of length >= 1"),
        ({"calculated_at": None}, r"field 'calculated_at': missing \(null\)"),
    ],
)
def test_a_malformed_inventory_count_is_named_with_its_field(change, message) -> None:
    # Counts have no id of their own: the record is named by how it starts.
    expected = r"malformed Square inventory count \(no id; record starts \{\"catalog_object_id\":\"VAR-1\".*"
    body = decode_inventory_page(msgspec.json.encode({"counts": [COUNT, {**COUNT, **change}]}))
    assert len(body["counts"]) == 1
    rejection = refusal(body)
    assert re.search(expected + message, rejection.reason)
    # Filed under the id the sync gives a count (catalog object/location/state) while it has one.
    assert rejection.record_id == "/".join(
        str({**COUNT, **change}[key]) for key in ("catalog_object_id", "location_id", "state")
    )


def test_locations_are_typed_and_a_malformed_one_is_named() -> None:
    answer = {"locations": [{"id": "LOC-1", "name": "Main", "status": "ACTIVE", "created_at": MOMENT}]}
    (location,), refused = locations_of(answer)
    assert refused == []
    row = location_row(location, SYNCED_AT)
    assert (row["id"], row["status"], row["timezone"]) == ("LOC-1", "ACTIVE", None)
    assert row["created_at"] == datetime(2026, 11, 2, 12, tzinfo=UTC)
    assert locations_of({}) == ([], [])
    kept, (rejection,) = locations_of({"locations": [answer["locations"][0], {"id": "LOC-2", "name": 7}]})
    assert [location.id for location in kept] == ["LOC-1"]
    assert rejection.reason.startswith("ListLocations: malformed Square location 'LOC-2': field 'name'")


def test_order_entries_are_typed() -> None:
    raw = msgspec.json.encode({"order_entries": [{"order_id": "O-1", "version": 2, "location_id": "LOC-1"}]})
    assert [entry.order_id for entry in decode_order_entries_page(raw)["order_entries"]] == ["O-1"]
    with pytest.raises(MalformedRecordError, match=r"order entry \(no id; .*field 'order_id': missing"):
        decode_order_entries_page(msgspec.json.encode({"order_entries": [{"version": 2}]}))

"""Typed SearchOrders decoding gives the dict path's rows and leaves every judgement on bad data to it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from logikal_square_sync.square.order_structs import Order, decode_orders_page, order_struct_rows
from logikal_square_sync.square.records import MalformedRecord, order_rows, order_time
from logikal_square_sync_tests.square.conftest import json_page

SYNCED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
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
    return json_page("orders", list(orders), cursor)


def test_plain_orders_decode_typed_into_the_rows_of_the_dict_path() -> None:
    minimal = {k: ORDER[k] for k in ("id", "location_id", "state", "created_at", "updated_at")}
    decoded = decode_orders_page(page(ORDER, minimal))
    assert decoded["cursor"] == "CURSOR"
    assert all(isinstance(order, Order) for order in decoded["orders"])
    for typed, original in zip(decoded["orders"], [ORDER, minimal], strict=True):
        assert order_struct_rows(typed, SYNCED_AT) == order_rows(original, SYNCED_AT)
        assert order_time(typed, "updated_at") == order_time(original, "updated_at")
    assert "cursor" not in decode_orders_page(page(ORDER, cursor=None))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("id",), "", r"missing required field 'id'"),
        (("state",), None, r"missing required field 'state'"),
        (("updated_at",), "2026-11-02T12:57:42", r"field 'updated_at' has no UTC offset"),
        (("created_at",), "yesterday-ish", r"field 'created_at' is not an RFC 3339 timestamp"),
        (("version",), True, r"field 'version' should be an integer, got True"),
        (("total_money",), "lots", r"field 'total_money' should be a Money object"),
        (("line_items", 0, "quantity"), "many", r"line item 0 .*field 'quantity' is not a decimal"),
        (("line_items", 1, "quantity"), "NaN", r"line item 1 .*field 'quantity' is not a decimal"),
        (("line_items", 1), "oops", r"line_items\[1\] is not an object"),
    ],
)
def test_a_page_with_a_bad_order_is_judged_by_the_dict_path(path, value, message) -> None:
    bad = copy.deepcopy(ORDER)
    target = bad
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    decoded = decode_orders_page(page(ORDER, bad))
    assert all(isinstance(order, dict) for order in decoded["orders"])  # the whole page
    with pytest.raises(MalformedRecord, match=message):
        for order in decoded["orders"]:
            order_rows(order, SYNCED_AT)


def test_values_the_typed_decoder_refuses_but_the_dict_path_accepts_are_kept() -> None:
    odd = copy.deepcopy(ORDER)
    odd["line_items"][0]["name"] = 42  # not a string: stored as the dict path stores it
    decoded = decode_orders_page(page(odd))
    assert isinstance(decoded["orders"][0], dict)
    assert order_rows(decoded["orders"][0], SYNCED_AT)[1][0]["name"] == 42


def test_a_body_that_is_no_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        decode_orders_page(page(ORDER)[:-20])

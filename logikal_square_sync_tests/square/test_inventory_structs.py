"""Typed inventory decoding gives the dict path's rows and leaves every judgement on bad data to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from logikal_square_sync.square.inventory_structs import Count, count_struct_row, decode_counts_page
from logikal_square_sync.square.records import MalformedRecord, inventory_row
from logikal_square_sync_tests.square.conftest import json_page

SYNCED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
COUNT: dict[str, Any] = {
    "catalog_object_id": "VAR-1",
    "catalog_object_type": "ITEM_VARIATION",
    "state": "IN_STOCK",
    "location_id": "LOC-1",
    "quantity": "12.50",
    "calculated_at": "2026-11-02T14:57:42.123+02:00",
}


def page(*counts: dict[str, Any], cursor: str | None = "CURSOR") -> bytes:
    return json_page("counts", list(counts), cursor)


def test_plain_counts_decode_typed_into_the_rows_of_the_dict_path() -> None:
    minimal = {k: COUNT[k] for k in ("catalog_object_id", "state", "location_id", "calculated_at")}
    whole_seconds = {**COUNT, "quantity": 3, "calculated_at": "2026-11-02T12:57:42Z"}
    counts = [COUNT, {**minimal, "quantity": "0"}, whole_seconds]
    decoded = decode_counts_page(page(*counts))
    assert decoded["cursor"] == "CURSOR"
    assert all(isinstance(count, Count) for count in decoded["counts"])
    for typed, original in zip(decoded["counts"], counts, strict=True):
        assert count_struct_row(typed, SYNCED_AT) == inventory_row(original, SYNCED_AT)
    assert count_struct_row(decoded["counts"][0], SYNCED_AT)["calculated_at"].tzinfo == UTC
    assert "cursor" not in decode_counts_page(page(COUNT, cursor=None))
    assert decode_counts_page(b"{}") == {"counts": []}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("catalog_object_id", "", r"missing required field 'catalog_object_id'"),
        ("location_id", None, r"missing required field 'location_id'"),
        ("state", 7, r"field 'state' should be a string, got 7"),
        ("calculated_at", "2026-11-02T12:57:42", r"field 'calculated_at' has no UTC offset"),
        ("calculated_at", "yesterday-ish", r"field 'calculated_at' is not an RFC 3339 timestamp"),
        ("quantity", "lots", r"field 'quantity' is not a decimal: 'lots'"),
        ("quantity", "NaN", r"field 'quantity' is not a decimal: 'NaN'"),
        ("quantity", True, r"field 'quantity' should be a decimal string, got True"),
        ("catalog_object_type", ["ITEM"], r"field 'catalog_object_type' should be a string"),
    ],
)
def test_a_page_with_a_bad_count_is_judged_by_the_dict_path(field: str, value: Any, message: str) -> None:
    counts = decode_counts_page(page(COUNT, {**COUNT, field: value}))["counts"]
    assert [type(count) for count in counts] == [dict, dict]  # the whole page
    with pytest.raises(MalformedRecord, match=message):
        [inventory_row(count, SYNCED_AT) for count in counts]


def test_a_body_that_is_no_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        decode_counts_page(page(COUNT)[:-20])

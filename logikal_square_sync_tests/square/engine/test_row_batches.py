"""Batches of rows: of each row the newest copy, a catalog tombstone in a batch of its own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from logikal_square_sync.square.engine.catalog_sync import catalog
from logikal_square_sync.square.engine.inventory_sync import inventory
from logikal_square_sync.square.engine.row_batches import Page, batches_of, record_id
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_tests.square.helpers import catalog_policy, inventory_policy

AT = datetime.fromisoformat("2026-06-01T00:00:00Z")


def _variation(object_id: str, version: int, deleted: bool = False) -> dict[str, Any]:
    return {"id": object_id, "version": version, "updated_at": AT, "is_deleted": deleted}


def _page(*rows: dict[str, Any]) -> Page:
    return Page(len(rows), {t.square_catalog_variations: list(rows)}, False, False, [])


def test_a_catalog_copy_no_newer_than_one_an_earlier_batch_holds_is_dropped() -> None:
    new_batch = batches_of(catalog(catalog_policy()))
    first = new_batch()
    assert first.add(_page(_variation("A", 2), _variation("B", 5)))
    second = new_batch()
    # A nested copy read again, an older one, a newer one, a new object.
    assert second.add(_page(_variation("A", 2), _variation("B", 4), _variation("B", 6), _variation("C", 1)))
    held = second.rows[t.square_catalog_variations]
    assert {key: row["version"] for key, row in held.items()} == {"B": 6, "C": 1}
    # A tombstone of an object this batch holds waits for a batch of its own.
    assert not second.add(_page(_variation("C", 2, deleted=True)))
    assert {key: row["version"] for key, row in held.items()} == {"B": 6, "C": 1}


def _count(quantity: str, minute: int) -> dict[str, Any]:
    return {
        "catalog_object_id": "V",
        "location_id": "L",
        "state": "IN_STOCK",
        "quantity": quantity,
        "calculated_at": AT.replace(minute=minute),
    }


def test_an_inventory_batch_keeps_the_latest_count_and_the_first_pages_newest() -> None:
    new_batch = batches_of(inventory(inventory_policy()))
    first, second = new_batch(), new_batch()
    counts = t.square_inventory_counts
    assert first.add(Page(2, {counts: [_count("1", 5), _count("2", 3)]}, False, False, []))
    assert first.add(Page(1, {counts: [_count("3", 9)]}, True, False, []))
    assert [row["quantity"] for row in first.rows[counts].values()] == ["3"]
    assert (first.newest_on_first_page, first.newest) == (AT.replace(minute=5), AT.replace(minute=9))
    # Counts are not remembered across batches: an older copy in a later batch is left to the upsert.
    assert second.add(Page(1, {counts: [_count("0", 1)]}, True, False, []))
    assert [row["quantity"] for row in second.rows[counts].values()] == ["0"]
    assert (first.read, first.pages, first.last) == (3, 2, True)


def test_a_rows_id_in_rejected_records_is_its_primary_key() -> None:
    assert record_id(t.square_inventory_counts, _count("1", 0)) == "V/L/IN_STOCK"
    assert record_id(t.square_catalog_variations, _variation("A", 1)) == "A"

"""The Square store on both warehouses: tombstones, orders with their line items, watermarks, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.square.engine.store import (
    Quarantine,
    move_watermarks,
    read_watermarks,
    read_watermarks_under,
    stored_order_ids,
    upsert_catalog,
    write_orders,
)
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.quarantine import Rejection, quarantine, quarantined

AT = datetime(2026, 6, 1, tzinfo=UTC)


def _variation(version: int, **attributes: Any) -> dict[str, Any]:
    empty = dict.fromkeys(("item_id", "name", "sku", "price_amount", "price_currency"))
    common = {"id": "V", "version": version, "updated_at": AT, "is_deleted": False, "synced_at": AT}
    return {**empty, **common, **attributes}


def test_a_catalog_tombstone_keeps_the_attributes_it_does_not_carry(engine: sa.Engine) -> None:
    variations = t.square_catalog_variations
    with engine.begin() as conn:
        espresso = _variation(1, name="Espresso", sku="E-1", price_amount=250)
        first = upsert_catalog(conn, variations, [espresso])
        tombstone = upsert_catalog(conn, variations, [_variation(2, is_deleted=True)])
        older = upsert_catalog(conn, variations, [_variation(1, name="Older copy")])
    assert (first.inserted, tombstone.updated, tombstone.deleted, older.updated) == (1, 1, 1, 0)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(variations.c.name, variations.c.sku, variations.c.is_deleted)).one()
    assert tuple(stored) == ("Espresso", "E-1", True)


def _order(order_id: str, updated_minute: int) -> dict[str, Any]:
    moment = AT.replace(minute=updated_minute)
    return {
        "id": order_id,
        "location_id": "L",
        "state": "OPEN",
        "created_at": AT,
        "updated_at": moment,
        "closed_at": None,
        "version": 1,
        "total_amount": 100,
        "total_currency": "EUR",
        "synced_at": moment,
    }


def _line_item(order_id: str, uid: str) -> dict[str, Any]:
    names = ("name", "catalog_object_id", "base_price_amount", "total_amount", "currency")
    return {"order_id": order_id, "uid": uid, "quantity": Decimal(1), **dict.fromkeys(names)}


def test_a_rewritten_order_has_its_line_items_replaced(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert write_orders(conn, [], {}) is None
        first = write_orders(conn, [_order("A", 1)], {"A": [_line_item("A", "1"), _line_item("A", "2")]})
        again = write_orders(conn, [_order("A", 1)], {"A": [_line_item("A", "3")]})
        newer = write_orders(conn, [_order("A", 5)], {"A": [_line_item("A", "4")]})
    assert first is not None and (first.inserted, first.line_items) == (1, 2)
    assert again is not None and (again.inserted, again.updated, again.line_items) == (0, 0, 0)
    assert newer is not None and (newer.updated, newer.newest["updated_at"]) == (1, AT.replace(minute=5))
    with engine.connect() as conn:
        uids = conn.execute(sa.select(t.square_order_line_items.c.uid)).scalars().all()
    assert uids == ["4"]
    assert stored_order_ids(engine, {"A", "B"}) == {"A"}


def test_watermarks_commit_with_the_callers_transaction(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        move_watermarks(conn, {"square/test/a": "1", "square/test/b": "2"})
    assert read_watermarks(engine, "square/test/b", "square/test/none") == ["2", None]
    assert read_watermarks_under(engine, "square/test/") == {"square/test/a": "1", "square/test/b": "2"}


def test_the_quarantine_releases_only_what_it_holds(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        quarantine(conn, [Rejection("Square", "order", "A", "too long", "{}")])
    held = Quarantine(engine)
    with engine.begin() as conn:
        held.release(conn, "location", ["A"])
        held.release(conn, "order", ["B"])
    assert [row.id for row in quarantined(engine, "Square", ["order"])] == ["A"]
    with engine.begin() as conn:
        held.release(conn, "order", ["A", "B"])
    assert quarantined(engine, "Square", ["order"]) == []

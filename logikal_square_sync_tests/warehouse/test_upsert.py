from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from logikal_square_sync.warehouse.tables import square_inventory_counts, square_locations, square_orders
from logikal_square_sync.warehouse.upsert import COPY_THRESHOLD, existing_keys, key_filter, upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _location(location_id: str, name: str, synced_at: datetime = T0) -> dict:
    return {
        "id": location_id,
        "name": name,
        "status": "ACTIVE",
        "type": "PHYSICAL",
        "timezone": "UTC",
        "currency": "EUR",
        "merchant_id": "M1",
        "created_at": T0,
        "synced_at": synced_at,
    }


def _order(order_id: str, updated_at: datetime, version: int | None, state: str = "OPEN") -> dict:
    return {
        "id": order_id,
        "location_id": "L1",
        "state": state,
        "created_at": T0,
        "updated_at": updated_at,
        "closed_at": None,
        "version": version,
        "total_amount": 100,
        "total_currency": "EUR",
        "synced_at": T0,
    }


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]


def test_inserts_then_updates_only_changed_rows(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first = upsert(conn, square_locations, [_location("L1", "Main"), _location("L2", "Harbour")])
    assert (first.inserted, first.updated) == (2, 0)

    later = T0 + timedelta(hours=1)
    with engine.begin() as conn:
        again = upsert(
            conn, square_locations, [_location("L1", "Main", later), _location("L2", "Quay", later)]
        )
    assert (again.inserted, again.updated) == (0, 1)
    assert again.written_keys == (("L2",),)
    rows = _rows(engine, square_locations)
    assert [(row["id"], row["name"]) for row in rows] == [("L1", "Main"), ("L2", "Quay")]
    # An unchanged row is not rewritten, so its synced_at says when it last changed.
    assert rows[0]["synced_at"] == T0 and rows[1]["synced_at"] == later


def test_newer_wins_by_updated_at_then_version(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        upsert(
            conn,
            square_orders,
            [_order("O1", T0, 2, "OPEN"), _order("O2", T0, None)],
            newer_by=("updated_at", "version"),
        )
    older = _order("O1", T0 - timedelta(seconds=1), 9, "CANCELED")
    same_time_lower_version = _order("O1", T0, 1, "CANCELED")
    with engine.begin() as conn:
        result = upsert(conn, square_orders, [older], newer_by=("updated_at", "version"))
        result2 = upsert(conn, square_orders, [same_time_lower_version], newer_by=("updated_at", "version"))
    assert result.written == 0 and result2.written == 0
    assert _rows(engine, square_orders)[0]["state"] == "OPEN"

    with engine.begin() as conn:
        newer_version = upsert(
            conn, square_orders, [_order("O1", T0, 3, "COMPLETED")], newer_by=("updated_at", "version")
        )
        # A version appearing where there was none is newer; NULL sorts lowest.
        versioned = upsert(
            conn, square_orders, [_order("O2", T0, 1, "COMPLETED")], newer_by=("updated_at", "version")
        )
    assert newer_version.updated == 1 and versioned.updated == 1
    assert [row["state"] for row in _rows(engine, square_orders)] == ["COMPLETED", "COMPLETED"]


def test_composite_keys(engine: sa.Engine) -> None:
    def count(obj: str, state: str, quantity: str, at: datetime) -> dict:
        return {
            "catalog_object_id": obj,
            "location_id": "L1",
            "state": state,
            "catalog_object_type": "ITEM_VARIATION",
            "quantity": quantity,
            "calculated_at": at,
            "synced_at": at,
        }

    with engine.begin() as conn:
        upsert(
            conn, square_inventory_counts, [count("V1", "IN_STOCK", "3", T0), count("V1", "SOLD", "1", T0)]
        )
        result = upsert(
            conn,
            square_inventory_counts,
            [count("V1", "IN_STOCK", "2", T0 + timedelta(minutes=1)), count("V2", "IN_STOCK", "5", T0)],
            newer_by=("calculated_at",),
        )
    assert (result.inserted, result.updated) == (1, 1)
    quantities = {
        (r["catalog_object_id"], r["state"]): float(r["quantity"])
        for r in _rows(engine, square_inventory_counts)
    }
    assert quantities == {("V1", "IN_STOCK"): 2.0, ("V1", "SOLD"): 1.0, ("V2", "IN_STOCK"): 5.0}


def test_timestamps_come_back_timezone_aware_utc(engine: sa.Engine) -> None:
    berlin = datetime(2026, 6, 1, 14, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    with engine.begin() as conn:
        upsert(conn, square_locations, [_location("L1", "Main", berlin)])
    synced_at = _rows(engine, square_locations)[0]["synced_at"]
    assert synced_at.tzinfo is not None and synced_at.utcoffset() == timedelta(0)
    assert synced_at == datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


def test_naive_timestamps_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as conn:
        upsert(conn, square_locations, [_location("L1", "Main", datetime(2026, 1, 1))])


def test_a_batch_with_a_repeated_key_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="repeats a primary key"), engine.begin() as conn:
        upsert(conn, square_locations, [_location("L1", "A"), _location("L1", "B")])


def test_a_large_batch_mixing_new_and_stored_rows(engine: sa.Engine) -> None:
    """Above COPY_THRESHOLD PostgreSQL copies the new rows and guards only the stored ones."""
    with engine.begin() as conn:
        upsert(
            conn,
            square_orders,
            [_order(f"O{i}", T0, 1) for i in range(3)],
            newer_by=("updated_at", "version"),
        )
    batch = [_order("O0", T0, 2, "COMPLETED"), _order("O1", T0, 0, "CANCELED"), _order("O2", T0, 1)]
    batch += [_order(f"N{i}", T0, 1) for i in range(COPY_THRESHOLD)]
    with engine.begin() as conn:
        result = upsert(conn, square_orders, batch, newer_by=("updated_at", "version"))
    assert result.updated_keys == (("O0",),)  # O1 is older, O2 unchanged
    assert result.inserted == COPY_THRESHOLD
    states = {row["id"]: row["state"] for row in _rows(engine, square_orders)}
    assert len(states) == COPY_THRESHOLD + 3
    assert (states["O0"], states["O1"], states["O2"]) == ("COMPLETED", "OPEN", "OPEN")


# Keys a text array literal must quote: its own syntax (braces, commas, quotes, backslashes),
# spaces, the word NULL, an empty-looking element, non-ASCII.
AWKWARD_KEYS = ['a"b', "c\\d", "{e}", "f,g", " h ", "NULL", "null", "''", "Zürich ✓", 'i\\"j']


def test_key_lookups_find_exactly_the_stored_keys_however_they_are_spelled(engine: sa.Engine) -> None:
    stored = AWKWARD_KEYS[::2]
    with engine.begin() as conn:
        upsert(conn, square_locations, [_location(key, "x") for key in stored])
    asked = [*AWKWARD_KEYS, "absent"]
    with engine.connect() as conn:
        assert existing_keys(conn, square_locations, [(key,) for key in asked]) == {(key,) for key in stored}
        found = conn.execute(
            sa.select(square_locations.c.id).where(key_filter(conn, square_locations.c.id, asked))
        )
        assert set(found.scalars()) == set(stored)


def test_composite_key_lookups_find_exactly_the_stored_keys(engine: sa.Engine) -> None:
    def count(obj: str, location: str) -> dict:
        return {
            "catalog_object_id": obj,
            "location_id": location,
            "state": "IN_STOCK",
            "catalog_object_type": "ITEM_VARIATION",
            "quantity": "1",
            "calculated_at": T0,
            "synced_at": T0,
        }

    stored = [(obj, location) for obj in AWKWARD_KEYS for location in AWKWARD_KEYS[:3]]
    with engine.begin() as conn:
        upsert(conn, square_inventory_counts, [count(obj, location) for obj, location in stored])
    # Every stored key and, for each, one differing only in its second column.
    asked = [(obj, location, "IN_STOCK") for obj, location in stored]
    asked += [(obj, location + "x", "IN_STOCK") for obj, location in stored]
    with engine.connect() as conn:
        assert existing_keys(conn, square_inventory_counts, asked) == set(asked[: len(stored)])

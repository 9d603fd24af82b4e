"""Binary COPY: every column type, NULL, unicode and large text come back as written.

The round trips run on both warehouses: PostgreSQL writes these through binary COPY (above
COPY_THRESHOLD), SQLite through executemany, and both must read back the same. The
refusals and the column types binary COPY names run against real PostgreSQL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from logikal_square_sync.warehouse.copy import copy_types
from logikal_square_sync.warehouse.limits import ValueRejected
from logikal_square_sync.warehouse.quarantine import refused_for_its_data
from logikal_square_sync.warehouse.tables import (
    logikal_parts_list_files,
    metadata,
    square_catalog_variations,
    square_inventory_counts,
    square_order_line_items,
    square_orders,
)
from logikal_square_sync.warehouse.upsert import COPY_THRESHOLD, insert_rows

ON_POSTGRES = pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Characters a text format would escape, a NULL marker spelled as data, multi-byte UTF-8
# (two, three and four bytes, a combining accent, right-to-left), and the empty string.
AWKWARD_TEXT = [
    "a\tb",
    "line\nbreak",
    "cr\rhere",
    "back\\slash",
    "\\N",
    "",
    "Zürich ✓",
    "plain",
    "🧱🪟",
    "e\u0301",
    "שלום",
]


def _variation(i: int, synced_at: datetime) -> dict:
    return {
        "id": f"V{i:04d}",
        "item_id": None if i % 3 == 0 else f"I{i % 17}",
        "name": AWKWARD_TEXT[i % len(AWKWARD_TEXT)] if i % 5 else None,
        "sku": f"sku\t{i}" if i % 7 == 0 else f"SKU-{i}",
        "price_amount": None if i % 4 == 0 else i * 100,
        "price_currency": "EUR",
        "version": 10**15 + i,
        "updated_at": T0 + timedelta(milliseconds=i),
        "is_deleted": i % 2 == 0,
        "synced_at": synced_at,  # one object shared by every row, as a page's rows share it
    }


def test_text_booleans_numbers_and_timestamps_round_trip(engine: sa.Engine) -> None:
    synced_at = T0 + timedelta(days=1)
    rows = [_variation(i, synced_at) for i in range(COPY_THRESHOLD + 40)]
    with engine.begin() as conn:
        insert_rows(conn, square_catalog_variations, rows)
    with engine.connect() as conn:
        stored = [dict(r._mapping) for r in conn.execute(sa.select(square_catalog_variations).order_by("id"))]
    assert stored == rows


def test_decimals_round_trip(engine: sa.Engine) -> None:
    quantities = [Decimal("0"), Decimal("1.5"), Decimal("-3"), Decimal("12345.12345")]  # SQLite keeps a float
    rows = [
        {
            "catalog_object_id": f"O{i:04d}",
            "location_id": "L1",
            "state": "IN_STOCK",
            "catalog_object_type": None,
            "quantity": quantities[i % len(quantities)],
            "calculated_at": T0 + timedelta(seconds=i),
            "synced_at": T0,
        }
        for i in range(COPY_THRESHOLD + 5)
    ]
    with engine.begin() as conn:
        insert_rows(conn, square_inventory_counts, rows)
    c = square_inventory_counts.c
    with engine.connect() as conn:
        stored = conn.execute(sa.select(c.catalog_object_id, c.quantity).order_by(c.catalog_object_id)).all()
    assert [(key, quantity) for key, quantity in stored] == [
        (row["catalog_object_id"], row["quantity"]) for row in rows
    ]


def test_binary_round_trips(engine: sa.Engine) -> None:
    contents = [bytes([i % 256, 0, 92, 9, 10]) * (i % 3 + 1) for i in range(COPY_THRESHOLD)]
    rows = [
        {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size_bytes": len(content),
            "content": content,
            "stored_at": T0,
        }
        for content in dict.fromkeys(contents)
    ]
    with engine.begin() as conn:
        insert_rows(conn, logikal_parts_list_files, rows)
    f = logikal_parts_list_files.c
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(f.sha256, f.content)).all())
    assert stored == {row["sha256"]: row["content"] for row in rows}


def _order(i: int) -> dict:
    offset = timezone(timedelta(hours=(i % 27) - 12, minutes=30 * (i % 2)))
    return {
        "id": f"O{i:05d}",
        "location_id": "L1",
        "state": "COMPLETED",
        # Any offset in, the same instant out (in UTC); microseconds kept.
        "created_at": datetime(2026, 3, 29, 1, 30, i % 60, i, tzinfo=offset),
        "updated_at": T0 + timedelta(microseconds=i),
        "closed_at": None if i % 3 == 0 else T0 - timedelta(days=400 * i),
        "version": None if i % 4 == 0 else 2**62 + i,
        "total_amount": None if i % 5 == 0 else [0, -1, 2**63 - 1, -(2**63), 199][i % 5],
        "total_currency": None if i % 6 == 0 else "EUR",
        "synced_at": T0,
    }


@ON_POSTGRES
def test_timestamps_money_and_nulls_round_trip_through_binary_copy(engine: sa.Engine) -> None:
    orders = [_order(i) for i in range(COPY_THRESHOLD + 10)]
    quantities = [Decimal("0"), Decimal("1.5"), Decimal("-3"), Decimal("123456789012345.12345"), None]
    items = [
        {
            "order_id": order["id"],
            "uid": f"#{i}",
            "name": AWKWARD_TEXT[i % len(AWKWARD_TEXT)] if i % 7 else None,
            "quantity": quantities[i % len(quantities)],
            "catalog_object_id": None if i % 2 else "V" * 192,
            "base_price_amount": None if i % 3 else 2**63 - 1,
            "total_amount": -(2**63) if i % 3 else None,
            "currency": "EUR",
        }
        for i, order in enumerate(orders)
    ]
    with engine.begin() as conn:
        insert_rows(conn, square_orders, orders)
        insert_rows(conn, square_order_line_items, items)
    stored_orders = _stored(engine, square_orders, "id")
    assert [row["created_at"].utcoffset() for row in stored_orders] == [timedelta(0)] * len(orders)
    assert stored_orders == orders  # equal instants, whatever the offset they were given in
    assert _stored(engine, square_order_line_items, "order_id") == items


@ON_POSTGRES
def test_large_text_round_trips_through_binary_copy(engine: sa.Engine) -> None:
    big = "".join(AWKWARD_TEXT) * 40_000  # ~2 MB of UTF-8 in one value
    rows = [{**_variation(i, T0), "name": big if i % 50 == 0 else f"v{i}"} for i in range(COPY_THRESHOLD)]
    with engine.begin() as conn:
        insert_rows(conn, square_catalog_variations, rows)
    assert _stored(engine, square_catalog_variations, "id") == rows


def _stored(engine: sa.Engine, table: sa.Table, order_by: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(order_by))]


@ON_POSTGRES
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "a\x00b"}, "name contains a NUL character"),
        ({"price_currency": "X" * 17}, "price_currency has 17 characters; the column holds 16"),
        ({"price_amount": 2**63}, "price_amount 9223372036854775808 is outside the 64-bit integer range"),
    ],
)
def test_what_postgresql_cannot_hold_is_refused_for_its_data(
    engine: sa.Engine, change: dict, reason: str
) -> None:
    rows = [_variation(i, T0) for i in range(COPY_THRESHOLD)]
    rows[7] = {**rows[7], **change}
    with pytest.raises(Exception) as refused, engine.begin() as conn:
        insert_rows(conn, square_catalog_variations, rows)
    # The quarantine takes it (`quarantine.py`): it names the record by the column checks.
    assert refused_for_its_data(refused.value)
    if isinstance(refused.value, ValueRejected):
        assert reason in str(refused.value)
    assert _stored(engine, square_catalog_variations, "id") == []


@ON_POSTGRES
def test_a_naive_timestamp_is_refused_naming_its_column(engine: sa.Engine) -> None:
    rows = [_variation(i, T0) for i in range(COPY_THRESHOLD)]
    rows[3] = {**rows[3], "updated_at": datetime(2026, 1, 1)}
    naive = "naive datetime .* square_catalog_variations.updated_at"
    with pytest.raises(ValueError, match=naive), engine.begin() as conn:
        insert_rows(conn, square_catalog_variations, rows)
    assert not refused_for_its_data(ValueError("naive datetime"))  # a bug, not data to quarantine


_PG_NAMES = {
    "timestamp with time zone": "timestamptz",
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "bytea": "bytea",
    "double precision": "float8",
    "text": "text",
}


@ON_POSTGRES
def test_the_types_binary_copy_names_are_the_migrated_schemas(engine: sa.Engine) -> None:
    """Binary COPY sends each value in the wire format of the type it names: a type that differs
    from the column's (int4 for a bigint) would be read as other bytes, so they must match."""
    with engine.connect() as conn:
        declared = {
            (table, column): kind
            for table, column, kind in conn.execute(
                sa.text(
                    "SELECT c.relname, a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
                )
            )
        }
    for table in metadata.sorted_tables:
        columns = tuple(column.name for column in table.columns)
        for column, named in zip(columns, copy_types(table, columns), strict=True):
            kind = declared[(table.name, column)]
            expected = "text" if kind == "character varying" else _PG_NAMES.get(kind, kind)
            assert named == expected, f"{table.name}.{column} is {kind}; binary COPY names {named}"

"""COPY's text encoding: every column type and every character the format escapes comes back as written.

Runs on both warehouses: PostgreSQL writes these through COPY (above
COPY_THRESHOLD), SQLite through executemany, and both must read back the same.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from logikal_square_sync.warehouse.copy import copy_text
from logikal_square_sync.warehouse.tables import (
    logikal_parts_list_files,
    square_catalog_variations,
    square_inventory_counts,
)
from logikal_square_sync.warehouse.upsert import COPY_THRESHOLD, insert_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# What text COPY must escape (backslash, newline, carriage return, tab), its NULL marker spelled
# as data, and characters it need not escape.
AWKWARD_TEXT = ["a\tb", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "", "Zürich ✓", "plain"]


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


def test_the_text_format_escapes_and_marks_null() -> None:
    rows: list[dict[str, object]] = [
        {"id": "V1", "name": "a\tb\\c\nd\re", "version": 1, "is_deleted": True, "updated_at": T0},
        {"id": "V2", "name": None, "version": 2, "is_deleted": False, "updated_at": None},
    ]
    text = copy_text(square_catalog_variations, rows, ["id", "name", "version", "is_deleted", "updated_at"])
    assert text == ("V1\ta\\tb\\\\c\\nd\\re\t1\tt\t2026-01-01T00:00:00+00:00\nV2\t\\N\t2\tf\t\\N\n")


def test_a_naive_timestamp_is_refused() -> None:
    rows = [{"id": "V1", "updated_at": T0}, {"id": "V2", "updated_at": datetime(2026, 1, 1)}]
    with pytest.raises(ValueError, match="naive datetime"):
        copy_text(square_catalog_variations, rows, ["id", "updated_at"])

"""Columns hold what Square's spec allows; both warehouses refuse the same values; refused records are
quarantined and the rest written.

The first test is generated from the committed table of the spec's limits
(`square/spec_limits.py`, checked against the spec in
`sandbox/test_square_spec_limits.py`): one case per field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from logikal_square_sync.warehouse.limits import row_problem
from logikal_square_sync.warehouse.quarantine import (
    Candidate,
    quarantined,
    refused_for_its_data,
    release,
    write_quarantining,
)
from logikal_square_sync.warehouse.tables import rejected_records, square_inventory_counts, square_locations
from logikal_square_sync.warehouse.upsert import COPY_THRESHOLD, upsert
from logikal_square_sync_tests.square.spec_limits import DECIMALS, MAX_LENGTH, STORED_IN, edge_value

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("field", sorted(MAX_LENGTH), ids="{0[0]}.{0[1]}".format)
def test_every_column_holds_the_longest_value_the_spec_allows(field: tuple[str, str]) -> None:
    value: Any = Decimal(edge_value(field)) if field in DECIMALS else edge_value(field)
    for table, column in STORED_IN[field]:
        assert row_problem(table, {column: value}) is None, f"{table.name}.{column} cannot hold {field}"


def _count(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "catalog_object_id": f"V{n}",
        "location_id": "L1",
        "state": "IN_STOCK",
        "catalog_object_type": "ITEM_VARIATION",
        "quantity": Decimal(1),
        "calculated_at": T0,
        "synced_at": T0,
        **changes,
    }


EDGE = _count(
    0,
    catalog_object_id="V" * MAX_LENGTH[("InventoryCount", "catalog_object_id")],
    location_id="L" * MAX_LENGTH[("InventoryCount", "location_id")],
    state="S" * MAX_LENGTH[("InventoryState", "enum")],
    quantity=Decimal("9" * MAX_LENGTH[("InventoryCount", "quantity")]),
)


@pytest.mark.parametrize("rows", [1, COPY_THRESHOLD], ids=["insert", "copy"])
def test_both_warehouses_store_spec_edge_values_exactly(engine: sa.Engine, rows: int) -> None:
    batch = [EDGE, _count(1, quantity=Decimal("0.00001"))] + [_count(n) for n in range(2, rows)]
    with engine.begin() as conn:
        upsert(conn, square_inventory_counts, batch)
    c = square_inventory_counts.c
    with engine.connect() as conn:
        stored = {key: value for key, value in conn.execute(sa.select(c.catalog_object_id, c.quantity))}
    assert stored[EDGE["catalog_object_id"]] == EDGE["quantity"]
    assert stored["V1"] == Decimal("0.00001")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"quantity": Decimal("9" * 27)}, "quantity 9+ has more than 26 digits before the point"),
        ({"catalog_object_id": "V" * 101}, "catalog_object_id has 101 characters; the column holds 100"),
        ({"catalog_object_type": "ITEM\x00VARIATION"}, "catalog_object_type contains a NUL character"),
    ],
)
@pytest.mark.parametrize("rows", [1, COPY_THRESHOLD], ids=["insert", "copy"])
def test_sqlite_refuses_what_postgresql_refuses(engine: sa.Engine, change, reason, rows: int) -> None:
    """The same value fails on both, by the path a sync takes (COPY on PostgreSQL from 200 rows)."""
    batch = [_count(n) for n in range(rows - 1)] + [_count(rows, **change)]
    with pytest.raises(Exception) as refused, engine.begin() as conn:
        upsert(conn, square_inventory_counts, batch)
    assert refused_for_its_data(refused.value), refused.value
    assert re.search(reason, row_problem(square_inventory_counts, batch[-1]) or "")
    with engine.connect() as conn:  # nothing written: the transaction rolled back
        assert conn.execute(sa.select(sa.func.count()).select_from(square_inventory_counts)).scalar_one() == 0


def _location(n: int, **changes: Any) -> dict[str, Any]:
    return {"id": f"L{n}", "name": f"Shop {n}", "status": "ACTIVE", "synced_at": T0, **changes}


def _candidate(row: dict[str, Any]) -> Candidate[dict[str, Any]]:
    return Candidate(
        "location",
        row["id"],
        row,
        [(square_locations, row)],
        lambda: msgspec.json.encode(row, enc_hook=str).decode(),
    )


def _write(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    return upsert(conn, square_locations, rows).written


def _stored_locations(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            key: name for key, name in conn.execute(sa.select(square_locations.c.id, square_locations.c.name))
        }


def test_refused_records_are_quarantined_and_the_rest_written(engine: sa.Engine) -> None:
    page = [_location(n) for n in range(5)]
    page[1]["name"] = "Laden\x00Nord"
    page[3]["status"] = "X" * 17
    written, rejected = write_quarantining(engine, "Square", page, _write, _candidate)
    assert written == 3
    assert _stored_locations(engine) == {"L0": "Shop 0", "L2": "Shop 2", "L4": "Shop 4"}
    assert [(r.record_id, r.reason) for r in rejected] == [
        ("L1", "square_locations: name contains a NUL character, which PostgreSQL text cannot hold"),
        ("L3", "square_locations: status has 17 characters; the column holds 16"),
    ]
    rows = quarantined(engine, "Square", ["location"])
    assert [(row.id, row.reason.split(":")[0]) for row in rows] == [
        ("L1", "square_locations"),
        ("L3", "square_locations"),
    ]
    with engine.connect() as conn:
        raw = conn.execute(
            sa.select(rejected_records.c.raw_json).where(rejected_records.c.id == "L1")
        ).scalar()
    assert raw is not None and "Laden\\u0000Nord" in raw  # stored, though PostgreSQL text holds no NUL

    # Seen again: first_seen stays; fixed and written: out of quarantine.
    first_seen = {row.id: row.first_seen for row in rows}
    write_quarantining(engine, "Square", [page[1]], _write, _candidate)
    assert {row.id: row.first_seen for row in quarantined(engine, "Square", ["location"])} == first_seen
    fixed = {**page[1], "name": "Laden Nord"}
    write_quarantining(
        engine,
        "Square",
        [fixed],
        _write,
        _candidate,
        released=lambda conn, rows: release(conn, "Square", "location", [row["id"] for row in rows]),
    )
    assert [row.id for row in quarantined(engine, "Square", ["location"])] == ["L3"]
    assert _stored_locations(engine)["L1"] == "Laden Nord"


def test_a_refusal_the_checks_cannot_foresee_is_found_record_by_record(engine: sa.Engine) -> None:
    """A NOT NULL the column checks do not look at: each record is tried alone, and only it is refused."""
    page = [_location(n) for n in range(4)]
    page[2]["synced_at"] = None
    written, rejected = write_quarantining(engine, "Square", page, _write, _candidate)
    assert written == 3 and [r.record_id for r in rejected] == ["L2"]
    assert "synced_at" in rejected[0].reason


def test_errors_that_are_not_about_the_data_are_not_quarantined(engine: sa.Engine) -> None:
    def broken(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
        return 0

    with pytest.raises(sa.exc.DBAPIError):
        write_quarantining(engine, "Square", [_location(1)], broken, _candidate)
    assert quarantined(engine, "Square", ["location"]) == []

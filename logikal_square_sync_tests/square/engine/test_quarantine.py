"""Records at Square's documented limits are stored exactly; records no warehouse can take are
quarantined, the rest is written, and the next sync after the source fixes them writes them.

Over real HTTP against the sandbox (`edge_records.py`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from logikal_square_sync.square.engine.catalog_sync import OBJECT_TYPES_BY_TABLE
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.quarantine import quarantined
from logikal_square_sync_sandbox.square import SquareSandbox
from logikal_square_sync_sandbox.square.edge_records import (
    Unwritable,
    fix_unwritable,
    serve_spec_edges,
    serve_unwritable,
)
from logikal_square_sync_tests.square.helpers import (
    assert_warehouse_equals_source,
    normalized,
    source_catalog,
    source_inventory,
    source_line_items,
    source_orders,
    sync_everything,
    warehouse_catalog,
    warehouse_inventory,
    warehouse_line_items,
    warehouse_orders,
)
from logikal_square_sync_tests.square.spec_limits import MAX_LENGTH

SQUARE_TYPES = ["location", "order", "inventory count", *OBJECT_TYPES_BY_TABLE.values()]


def _quarantine(engine: sa.Engine) -> set[tuple[str, str]]:
    return {(row.object_type, row.id) for row in quarantined(engine, "Square", SQUARE_TYPES)}


def assert_exact_but_for(engine: sa.Engine, sandbox: SquareSandbox, bad: Unwritable) -> None:
    """The warehouse equals the source in every record but the unwritable ones."""
    orders = set(bad.orders)
    assert warehouse_orders(engine) == {k: v for k, v in source_orders(sandbox).items() if k not in orders}
    assert warehouse_line_items(engine) == normalized(
        {item for item in source_line_items(sandbox) if item[0] not in orders}
    )
    stored, truth = warehouse_catalog(engine), source_catalog(sandbox)
    for kind in truth:
        assert {o for o in stored[kind] if o[0] not in bad.items} == {
            o for o in truth[kind] if o[0] not in bad.items
        }, kind
    counts = set(bad.counts)
    assert {k: v for k, v in warehouse_inventory(engine).items() if k not in counts} == {
        k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items() if k not in counts
    }


def test_values_at_the_spec_limits_are_stored_exactly(make_client, engine, sandbox) -> None:
    """As the issue measured it: three orders whose first line item's catalog_object_id has 192
    characters, and 20 ordinary new orders; with items, categories and counts at their limits."""
    sync_everything(make_client, engine)
    edges = serve_spec_edges(sandbox, MAX_LENGTH)
    ordinary = sandbox.add_orders(20)
    reports = sync_everything(make_client, engine)

    assert_warehouse_equals_source(engine, sandbox)
    assert reports["orders"].inserted == len(edges.orders) + len(ordinary)
    assert not _quarantine(engine) and not any(report.rejected for report in reports.values())
    li = t.square_order_line_items.c
    with engine.connect() as conn:
        longest = conn.execute(
            sa.select(sa.func.max(sa.func.length(li.catalog_object_id))).where(li.order_id.in_(edges.orders))
        ).scalar_one()
        quantities = set(conn.execute(sa.select(t.square_inventory_counts.c.quantity)).scalars())
    assert longest == MAX_LENGTH[("OrderLineItem", "catalog_object_id")]
    assert {Decimal("9" * 26), Decimal("99999999999999999999.99999"), Decimal("0.00001")} <= quantities


def test_unwritable_records_are_quarantined_and_written_once_the_source_fixes_them(
    make_client, engine, sandbox
) -> None:
    sync_everything(make_client, engine)
    bad = serve_unwritable(sandbox)
    ordinary = sandbox.add_orders(20)
    reports = sync_everything(make_client, engine)

    # The syncs completed; every other record is exact, the new ordinary orders included.
    assert_exact_but_for(engine, sandbox, bad)
    assert set(ordinary) <= set(warehouse_orders(engine))
    assert (reports["orders"].rejected, reports["catalog"].rejected, reports["inventory"].rejected) == (
        3,
        1,
        1,
    )
    rows = quarantined(engine, "Square", SQUARE_TYPES)
    assert {(row.object_type, row.id) for row in rows} == bad.ids()
    reasons = {row.object_type: row.reason for row in rows}
    assert reasons["order"] == (
        "square_order_line_items: name contains a NUL character, which PostgreSQL text cannot hold"
    )
    assert reasons["catalog item"].startswith("square_catalog_items: name contains a NUL character")
    assert reasons["inventory count"] == (
        "square_inventory_counts: quantity 100000000000000000000000000 has more than 26 digits"
        " before the point (numeric(31, 5))"
    )
    with engine.connect() as conn:
        raw = conn.execute(
            sa.select(t.rejected_records.c.raw_json).where(t.rejected_records.c.id == bad.orders[0])
        ).scalar_one()
    assert "Schraube\\u0000M8" in raw and bad.orders[0] in raw

    # Read again unchanged: still quarantined, nothing else moves.
    again = sync_everything(make_client, engine)
    assert _quarantine(engine) == bad.ids()
    assert again["orders"].inserted == 0

    fix_unwritable(sandbox, bad)
    fixed = sync_everything(make_client, engine)
    assert_warehouse_equals_source(engine, sandbox)
    assert _quarantine(engine) == set()
    assert not any(report.rejected for report in fixed.values())

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from logikal_square_sync.warehouse.connections import HEAD_REVISION, alembic_config, migrate
from logikal_square_sync.warehouse.tables import metadata


def test_migrations_build_exactly_the_declared_schema(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrating_twice_is_harmless(engine: sa.Engine) -> None:
    migrate(engine)
    migrate(engine)
    assert "square_orders" in sa.inspect(engine).get_table_names()


def test_the_head_revision_the_engine_knows_is_alembics() -> None:
    """`migrate` skips Alembic on a schema stamped HEAD_REVISION: it must be the newest migration."""
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


def test_a_schema_at_head_is_not_migrated_again(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD_REVISION
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        migrate(engine)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert statements == ["SELECT version_num FROM alembic_version"]


def test_widening_square_columns_keeps_every_row(engine: sa.Engine) -> None:
    """0004 rebuilds the Square tables on SQLite; an order's line items survive (ON DELETE CASCADE)."""
    from alembic import command

    from logikal_square_sync.warehouse.tables import (
        square_inventory_counts,
        square_order_line_items,
        square_orders,
    )

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    at = datetime(2026, 6, 1, tzinfo=UTC)
    order = {
        "id": "O1",
        "location_id": "L1",
        "state": "OPEN",
        "created_at": at,
        "updated_at": at,
        "synced_at": at,
    }
    item = {"order_id": "O1", "uid": "U1", "quantity": Decimal(2), "catalog_object_id": "C" * 64}
    with engine.begin() as conn:
        conn.execute(square_orders.insert(), [order])
        conn.execute(square_order_line_items.insert(), [item])
        # Written as 0003 declared it (the table object is 0004's).
        conn.execute(
            sa.text(
                "INSERT INTO square_inventory_counts (catalog_object_id, location_id, state, quantity,"
                " calculated_at, synced_at) VALUES ('V1', 'L1', 'IN_STOCK', 12.5, :at, :at)"
            ),
            {"at": at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at},
        )
        command.upgrade(alembic_config(conn), "head")
    with engine.begin() as conn:
        conn.execute(
            square_order_line_items.insert(), [{**item, "uid": "U2", "catalog_object_id": "C" * 192}]
        )
        stored = conn.execute(sa.select(square_order_line_items.c.uid).order_by("uid")).scalars().all()
        conn.execute(square_orders.delete())
        quantity = conn.execute(sa.select(square_inventory_counts.c.quantity)).scalar_one()
        conn.execute(square_inventory_counts.delete())
    assert stored == ["U1", "U2"]
    assert quantity == Decimal("12.5")

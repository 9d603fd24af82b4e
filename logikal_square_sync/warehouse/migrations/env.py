"""Alembic environment: runs on the connection handed over by `warehouse.engine.migrate`."""

from __future__ import annotations

from alembic import context

from logikal_square_sync.warehouse.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through logikal_square_sync.warehouse.connections.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

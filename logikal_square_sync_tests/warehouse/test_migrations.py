import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from logikal_square_sync.warehouse.engine import migrate
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

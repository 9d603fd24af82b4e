"""The test PostgreSQL: its admin connection, throw-away databases on it, emptying a warehouse there.

Under CI (`CI=true`) an unreachable server fails the test; elsewhere it is skipped with the
reason, so a laptop without PostgreSQL can still run the rest.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from logikal_square_sync.warehouse.connections import create_warehouse_engine
from logikal_square_sync.warehouse.tables import metadata
from logikal_square_sync_tests.ci import under_ci

POSTGRES_ADMIN_URL = os.environ.get(
    "LSS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


def reachable_postgres_admin(admin_url: str = POSTGRES_ADMIN_URL) -> sa.Engine:
    """An AUTOCOMMIT engine on the test PostgreSQL; fails the test under CI when the server is
    unreachable, skips it with the reason elsewhere."""
    admin = create_warehouse_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {admin_url} is unreachable: {error.orig}"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return admin


@contextlib.contextmanager
def throwaway_databases(*purposes: str, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[list[sa.URL]]:
    """Fresh databases on the test PostgreSQL, one per purpose, dropped afterwards."""
    admin = reachable_postgres_admin(admin_url)
    names = [f"lss_{purpose}_{uuid.uuid4().hex[:10]}" for purpose in purposes]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # With the driver the admin URL names (psycopg2): Dagster's storage takes these URLs as they
        # are, and a warehouse engine maps them to psycopg 3 itself.
        yield [sa.make_url(admin_url).set(database=name) for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_all_tables(engine: sa.Engine) -> None:
    """Every warehouse table emptied at once (PostgreSQL's TRUNCATE), the schema kept."""
    with engine.begin() as conn:
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names}"))

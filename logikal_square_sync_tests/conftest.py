"""Fixtures shared by every test: a pinned clock, real warehouses on SQLite and PostgreSQL.

Every test runs at `clock.ANCHOR` (the clock ticks on from there) whatever
the machine's clock, date or time zone, so no test can pass at noon and fail
at 02:16. PostgreSQL tests run against the machine's PostgreSQL service.
Under CI (`CI=true`) an unreachable server fails them; elsewhere they are
skipped with the reason, so a laptop without PostgreSQL can still run the rest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import time_machine

from logikal_square_sync.warehouse.connections import create_warehouse_engine, migrate, warehouse_engine
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync.warehouse.tables import metadata
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.demo_instance import running_demo  # noqa: F401  (a shared fixture)

POSTGRES_ADMIN_URL = os.environ.get(
    "LSS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


# The sandboxes' modes change what the APIs answer; the warehouse changes how rows are written.
# The two are independent, so a test in every mode runs them all on SQLite and only the first
# (the documented behaviour) on PostgreSQL too: `pytest.param(..., marks=SQLITE_ONLY)`.
SQLITE_ONLY = pytest.mark.sqlite_only


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if _postgres_in_a_sqlite_only_mode(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _postgres_in_a_sqlite_only_mode(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (
        callspec is not None
        and callspec.params.get("warehouse_url") == "postgres"
        and item.get_closest_marker("sqlite_only") is not None
    )


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[time_machine.Traveller]:
    """The whole process at `ANCHOR`, ticking; `pinned_clock.move_to(moment)` goes elsewhere.

    time-machine moves `time.time()` and `datetime.now()` for every thread
    (the sandbox servers' too), not the monotonic clock that timeouts use.
    """
    with time_machine.travel(ANCHOR, tick=True) as traveller:
        yield traveller


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


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throw-away database on the PostgreSQL service, dropped after the session."""
    admin = reachable_postgres_admin()
    name = f"lss_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    # At the newest schema from the start, as the init role leaves a production warehouse: a test
    # whose Dagster instance is on PostgreSQL is "production", whose processes never migrate.
    migration = create_warehouse_engine(url)
    migrate(migration)
    migration.dispose()
    try:
        yield url
    finally:
        warehouse_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_all_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    url = request.getfixturevalue("postgres_database")
    _empty_all_tables(warehouse_engine(url))
    return url


@pytest.fixture
def warehouse(warehouse_url: str) -> WarehouseResource:
    return WarehouseResource(url=warehouse_url)


@pytest.fixture
def engine(warehouse: WarehouseResource) -> sa.Engine:
    return warehouse.engine

"""Fixtures shared by every test: a pinned clock, real warehouses on SQLite and PostgreSQL.

Every test runs at `clock.ANCHOR` (the clock ticks on from there) whatever
the machine's clock, date or time zone, so no test can pass at noon and fail
at 02:16. PostgreSQL tests run against the machine's PostgreSQL service (see `postgres.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from logikal_square_sync.policies import OVERRIDE_ENV, policies
from logikal_square_sync.warehouse.connections import create_warehouse_engine, migrate, warehouse_engine
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.demo_instance import running_demo  # noqa: F401  (a shared fixture)
from logikal_square_sync_tests.postgres import empty_all_tables, throwaway_databases


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drops the PostgreSQL runs of the parameters marked `marks.SQLITE_ONLY`."""
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


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[time_machine.Traveller]:
    """The whole process at `ANCHOR`, ticking; `pinned_clock.move_to(moment)` goes elsewhere.

    time-machine moves `time.time()` and `datetime.now()` for every thread
    (the sandbox servers' too), not the monotonic clock that timeouts use.
    """
    with time_machine.travel(ANCHOR, tick=True) as traveller:
        yield traveller


@pytest.fixture
def progress_every_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every sync logs a progress line at each page (an operator's policy file, LSS_POLICIES_FILE)."""
    override = tmp_path / "progress-policies.yaml"
    override.write_text("progress: {every_pages: 1, every_seconds: 3600}\n")
    monkeypatch.setenv(OVERRIDE_ENV, str(override))
    policies.cache_clear()  # read again with the override, and again with the packaged file after
    yield
    policies.cache_clear()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throw-away database on the PostgreSQL service, dropped after the session."""
    with throwaway_databases("test") as (database,):
        url = database.render_as_string(hide_password=False)
        # At the newest schema from the start, as the init role leaves a production warehouse: a test
        # whose Dagster instance is on PostgreSQL is "production", whose processes never migrate.
        migration = create_warehouse_engine(url)
        migrate(migration)
        migration.dispose()
        try:
            yield url
        finally:
            warehouse_engine(url).dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    url = request.getfixturevalue("postgres_database")
    empty_all_tables(warehouse_engine(url))
    return url


@pytest.fixture
def warehouse(warehouse_url: str) -> WarehouseResource:
    return WarehouseResource(url=warehouse_url)


@pytest.fixture
def engine(warehouse: WarehouseResource) -> sa.Engine:
    return warehouse.engine

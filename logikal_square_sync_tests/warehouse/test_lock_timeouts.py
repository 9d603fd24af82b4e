"""A warehouse write never waits for ever: a lock held elsewhere ends it with an error naming the lock."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.connections import create_warehouse_engine, migrate
from logikal_square_sync.warehouse.locks import WarehouseLockTimeout, sqlstate
from logikal_square_sync.warehouse.tables import square_locations
from logikal_square_sync.warehouse.upsert import upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOUND = 0.5  # seconds: the test's lock_timeouts.warehouse_seconds


def _location(name: str) -> dict:
    return {
        "id": "L1",
        "name": name,
        "status": "ACTIVE",
        "timezone": "UTC",
        "currency": "EUR",
        "synced_at": T0,
    }


def _write(engine: sa.Engine, name: str) -> None:
    with engine.begin() as conn:
        upsert(conn, square_locations, [_location(name)])


@pytest.fixture
def bounded(warehouse_url: str) -> Iterator[sa.Engine]:
    """An engine on the test's warehouse whose lock waits end after BOUND, with one location stored."""
    engine = create_warehouse_engine(warehouse_url, lock_timeout_seconds=BOUND)
    migrate(engine)
    _write(engine, "Main")
    yield engine
    engine.dispose()


def _write_while_held(
    bounded: sa.Engine, other: sa.Engine, hold: Callable[[sa.Connection], object]
) -> WarehouseLockTimeout:
    """The error of a write on `bounded` while `other` holds a lock (`hold`) in an open transaction.

    The write waits the bound and ends with an error that names the setting and the bound.
    """
    try:
        with other.connect() as holder:
            hold(holder)
            started = time.monotonic()
            with pytest.raises(WarehouseLockTimeout) as error:
                _write(bounded, "Harbour")
            waited = time.monotonic() - started
            holder.rollback()
    finally:
        other.dispose()
    message = str(error.value)
    assert "lock_timeouts.warehouse_seconds" in message and f"{BOUND:g} s" in message
    assert waited >= BOUND * 0.9  # it did wait the bound, not fail at once
    # The driver's own error is the cause, and code that handles OperationalError still does.
    assert error.value.__cause__ is error.value.orig is not None
    assert isinstance(error.value, sa.exc.OperationalError)
    assert str(pickle.loads(pickle.dumps(error.value))) == message
    return error.value


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_a_row_lock_held_by_another_transaction_ends_in_a_lock_timeout_naming_the_table(
    postgres_database: str, bounded: sa.Engine
) -> None:
    other = sa.create_engine(postgres_database)
    # An ERP report or a forgotten psql session holding the row in an open transaction.
    row = sa.select(square_locations).where(square_locations.c.id == "L1").with_for_update()
    error = _write_while_held(bounded, other, lambda holder: holder.execute(row))
    assert 'relation "square_locations"' in str(error)
    assert "pg_blocking_pids" in str(error)
    assert sqlstate(error.orig) == "55P03"
    # Once the holder is gone the same write goes through.
    _write(bounded, "Harbour")


@pytest.mark.postgres
def test_every_warehouse_connection_carries_the_policy_lock_timeout(postgres_database: str) -> None:
    engine = create_warehouse_engine(postgres_database)
    try:
        with engine.connect() as conn:
            setting = conn.execute(sa.text("SELECT setting FROM pg_settings WHERE name = 'lock_timeout'"))
            assert float(setting.scalar_one()) == policies().lock_timeouts.warehouse_seconds * 1000
    finally:
        engine.dispose()


@pytest.mark.parametrize("warehouse_url", ["sqlite"], indirect=True)
def test_a_sqlite_writer_waits_for_another_only_up_to_the_bound(
    warehouse_url: str, bounded: sa.Engine
) -> None:
    other = create_warehouse_engine(warehouse_url)
    # Another process's write transaction.
    error = _write_while_held(bounded, other, lambda holder: holder.exec_driver_sql("BEGIN IMMEDIATE"))
    assert "SQLite file" in str(error)
    _write(bounded, "Harbour")

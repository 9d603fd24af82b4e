"""Engines for the warehouse, at the newest schema before first use.

Outside production each process migrates the schema itself before its first write (`dagster
dev`, the demo and the tests need no extra step). In production (`production.py`) only the
`init` role migrates (`python -m logikal_square_sync.warehouse.migrate`, run by
`deploy/commands.sh init`): a run worker that changed the schema would do so while other runs
of the old code still write, and with whatever rights the runs have. There a process finding
the schema behind fails, saying to run the init role.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from logikal_square_sync.common.production import production_storage
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.location import describe_warehouse
from logikal_square_sync.warehouse.locks import bound_lock_waits, busy_timeout_pragma, connect_options

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions/ (test_migrations checks that it is Alembic's head).
HEAD_REVISION = "0004"


def _on_sqlite_connect(busy_timeout: str):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the webserver read while a run writes; busy_timeout makes a second
        # writer wait for the lock (a bounded while) instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(busy_timeout)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def warehouse_driver_url(url: str) -> str:
    """`url` with the driver the warehouse runs on: psycopg 3 for PostgreSQL, whatever the URL names.

    The bulk writes use psycopg 3's binary COPY (`copy.py`), so a `postgresql://` or
    `postgresql+psycopg2://` URL (Dagster's storage keeps psycopg2) reaches the same database
    through psycopg 3. Any other URL is returned as it is.
    """
    scheme, separator, rest = url.partition("://")
    if separator and scheme.split("+")[0] in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    return url


def create_warehouse_engine(url: str, *, lock_timeout_seconds: float | None = None) -> sa.Engine:
    """An engine whose every lock wait ends after `lock_timeout_seconds` (default: policies.yaml
    lock_timeouts.warehouse_seconds) with a `WarehouseLockTimeout` naming what waited."""
    if lock_timeout_seconds is None:
        lock_timeout_seconds = policies().lock_timeouts.warehouse_seconds
    url = warehouse_driver_url(url)
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            # Made here, when an engine is first needed, so loading the definitions writes nothing.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _on_sqlite_connect(busy_timeout_pragma(lock_timeout_seconds)))
        bound_lock_waits(engine, lock_timeout_seconds)
        return engine
    # Every sync commits page by page, data and watermark together, and re-running it
    # is idempotent. So a commit need not wait for its WAL flush: a server crash may
    # lose the last few commits (never consistency), and the next run re-reads them.
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"options": f"-c synchronous_commit=off {connect_options(lock_timeout_seconds)}"},
    )
    bound_lock_waits(engine, lock_timeout_seconds)
    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    # Alembic is imported where a schema is migrated, not where the definitions load.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


class WarehouseNotMigrated(RuntimeError):
    """In production, a warehouse whose schema is not the one this code needs."""


def schema_revisions(engine: sa.Engine) -> list[str]:
    """The Alembic revisions stamped in the warehouse; none when it was never migrated.

    One statement for a stamped schema (every process but the first after a release). Only when
    it fails is the table looked for, so that a database that cannot be reached raises its own
    error instead of reading as "no schema".
    """
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    except sa.exc.DBAPIError:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
        raise


def _at_head(engine: sa.Engine) -> bool:
    return schema_revisions(engine) == [HEAD_REVISION]


def require_head(engine: sa.Engine, storage: str) -> None:
    """Fails unless the schema is at HEAD_REVISION, saying to run the init role."""
    stamped = schema_revisions(engine)
    if stamped == [HEAD_REVISION]:
        return
    # Not the URL itself: it may carry a password, and this message reaches logs and alerts.

    found = f"is at schema revision {', '.join(stamped)}" if stamped else "has no schema yet"
    raise WarehouseNotMigrated(
        f"The warehouse {describe_warehouse(engine.url)} {found}; this code needs revision "
        f"{HEAD_REVISION}. With Dagster's storage on a database server ({storage}) only the init "
        "role migrates the warehouse: run `deploy/commands.sh init` (compose: `docker compose "
        "run --rm init`; anywhere: `python -m logikal_square_sync.warehouse.migrate`) with this "
        "release's image and WAREHOUSE_URL, then retry."
    )


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration; safe when several processes start at once.

    A schema already at the newest revision (every process but the first after a release)
    is left without importing Alembic or reading its scripts, which cost a run's process
    a few tenths of a second before its first write.
    """
    if _at_head(engine):
        return
    from alembic import command

    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Serialises concurrent migrators (e.g. two Dagster run workers); released at commit.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7422431)"))
                command.upgrade(alembic_config(conn), "head")
            return
        except sa.exc.OperationalError:
            # SQLite has no advisory lock: a concurrent migrator wins, we retry and find nothing to do.
            if engine.dialect.name != "sqlite" or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@functools.cache
def warehouse_engine(url: str) -> sa.Engine:
    """One engine per URL and process, at the newest schema (migrated here outside production)."""
    engine = create_warehouse_engine(url)
    storage = production_storage()
    if storage is None:
        migrate(engine)
    else:
        require_head(engine, storage)
    return engine

"""Engines for the warehouse, migrated to the newest schema before first use."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions/ (test_migrations checks that it is Alembic's head).
HEAD_REVISION = "0004"


def default_data_dir() -> Path:
    return Path(os.environ.get("LSS_DATA_DIR", ".data"))


def default_warehouse_url() -> str:
    """The embedded default: a SQLite file in the local data folder (made on first connect, not here)."""
    return f"sqlite:///{(default_data_dir() / 'warehouse.sqlite').resolve()}"


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the webserver read while a run writes; busy_timeout makes a second
    # writer wait for the lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_warehouse_engine(url: str) -> sa.Engine:
    if url.startswith("postgresql://"):
        # SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg 3; we ship psycopg2.
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            # Made here, when an engine is first needed, so loading the definitions writes nothing.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    # Every sync commits page by page, data and watermark together, and re-running it
    # is idempotent. So a commit need not wait for its WAL flush: a server crash may
    # lose the last few commits (never consistency), and the next run re-reads them.
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"options": "-c synchronous_commit=off"},
    )


def alembic_config(connection: sa.Connection | None = None) -> Config:
    # Alembic is imported where a schema is migrated, not where the definitions load.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _at_head(engine: sa.Engine) -> bool:
    try:
        with engine.connect() as conn:
            stamped = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.DBAPIError:  # no alembic_version table: never migrated
        return False
    return stamped == [HEAD_REVISION]


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
    """One migrated engine per URL and process."""
    engine = create_warehouse_engine(url)
    migrate(engine)
    return engine

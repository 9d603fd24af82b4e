"""What the LogiKal store writes with: the write transaction, row upserts with quarantine, vanished rows."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.warehouse.quarantine import quarantine, release_written, screen_rows
from logikal_square_sync.warehouse.tables import (
    logikal_directories,
    logikal_elevations,
    logikal_phases,
    logikal_projects,
)
from logikal_square_sync.warehouse.upsert import upsert

BATCH = 500

log = logging.getLogger(__name__)


@contextlib.contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that reads and then writes, safely beside other writers.

    On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred
    transaction reads an older snapshot and cannot upgrade to a writer once
    another one committed (SQLITE_BUSY, which the busy timeout does not wait
    out). Writers then queue on the lock, so what such a transaction read stays
    true until it commits. PostgreSQL locks rows (`lock_project`) instead.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


@dataclass
class Changes:
    """Rows written by one step, by kind."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: list[str] = field(default_factory=list)  # ids of rows put in `rejected_records` instead


SOURCE = "LogiKal"
# How `rejected_records` names the rows of each table (as a malformed record names them).
OBJECT_TYPES = {
    logikal_directories: "directory",
    logikal_projects: "project",
    logikal_phases: "phase",
    logikal_elevations: "elevation",
}


def upsert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> Changes:
    """Writes `rows`; those the warehouse cannot hold go to `rejected_records` instead.

    A refused row still counts as seen (its key is in the listing), so it is
    never marked deleted; written, a row leaves the quarantine.
    """
    object_type = OBJECT_TYPES[table]
    rows, refused = screen_rows(table, rows, SOURCE, object_type)
    quarantine(conn, refused)
    for rejection in refused:
        log.warning(
            "LogiKal %s %r quarantined in rejected_records: %s",
            object_type,
            rejection.record_id,
            rejection.reason,
        )
    changes = Changes()
    for start in range(0, len(rows), BATCH):
        result = upsert(conn, table, rows[start : start + BATCH])
        changes.inserted += result.inserted
        changes.updated += result.updated
    release_written(conn, SOURCE, object_type, table, rows)
    changes.rejected = [rejection.record_id for rejection in refused]
    return changes


def key_clause(table: sa.Table, keys: Sequence[tuple[Any, ...]]) -> sa.ColumnElement[bool]:
    columns = list(table.primary_key.columns)
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return sa.tuple_(*columns).in_(keys)


def mark_vanished(
    conn: sa.Connection,
    table: sa.Table,
    seen: Collection[tuple[Any, ...]],
    now: datetime,
    scope: sa.ColumnElement[bool] | None = None,
) -> list[tuple[Any, ...]]:
    """Set `deleted_at` on live rows within `scope` whose key was not seen at the source."""
    query = sa.select(*table.primary_key.columns).where(table.c.deleted_at.is_(None))
    if scope is not None:
        query = query.where(scope)
    seen = set(seen)
    gone = sorted(tuple(row) for row in conn.execute(query) if tuple(row) not in seen)
    for start in range(0, len(gone), BATCH):
        batch = gone[start : start + BATCH]
        conn.execute(sa.update(table).where(key_clause(table, batch)).values(deleted_at=now, synced_at=now))
    return gone

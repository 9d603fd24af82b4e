"""The LogiKal tree in the warehouse: directories and projects, and the lock on a project's row."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.logikal.engine.client.records import (
    DirectoryRecord,
    ProjectRecord,
)
from logikal_square_sync.logikal.engine.store.writes import (
    BATCH,
    Changes,
    mark_vanished,
    upsert_rows,
)
from logikal_square_sync.warehouse.tables import (
    logikal_directories,
    logikal_elevations,
    logikal_phases,
    logikal_projects,
)

# -- directories ------------------------------------------------------------------


def _directory_rows(
    found: Iterable[tuple[DirectoryRecord, str | None]], now: datetime
) -> list[dict[str, Any]]:
    return [
        {"path": d.path, "name": d.name, "parent_path": parent, "synced_at": now, "deleted_at": None}
        for d, parent in found
    ]


def write_directories(
    conn: sa.Connection, found: Sequence[tuple[DirectoryRecord, str | None]], now: datetime
) -> Changes:
    """Upsert the whole walked tree and mark directories that are gone."""
    changes = upsert_rows(conn, logikal_directories, _directory_rows(found, now))
    gone = mark_vanished(conn, logikal_directories, {(d.path,) for d, _ in found}, now)
    changes.deleted = len(gone)
    return changes


def live_directories(conn: sa.Connection) -> list[str]:
    query = (
        sa.select(logikal_directories.c.path)
        .where(logikal_directories.c.deleted_at.is_(None))
        .order_by(logikal_directories.c.path)
    )
    return list(conn.execute(query).scalars())


# -- projects ----------------------------------------------------------------------


def _project_rows(found: Iterable[tuple[ProjectRecord, str]], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "directory_path": directory,
            "name": p.name,
            "job_number": p.job_number,
            "offer_number": p.offer_number,
            "person_in_charge": p.person_in_charge,
            "created_at": p.created_at,
            "changed_at": p.changed_at,
            "is_deleted": p.is_deleted,
            "synced_at": now,
            "deleted_at": None,
        }
        for p, directory in found
    ]


def write_projects(conn: sa.Connection, found: Sequence[tuple[ProjectRecord, str]], now: datetime) -> Changes:
    return upsert_rows(conn, logikal_projects, _project_rows(found, now))


@dataclass(frozen=True)
class ProjectRef:
    """A project as the warehouse knows it: enough to name it to a person and to find it at LogiKal."""

    id: str
    name: str
    directory_path: str
    job_number: str | None

    def describe(self) -> str:
        job = f", job {self.job_number}" if self.job_number else ""
        return f"{self.name} ({self.id}, in '{self.directory_path}'{job})"


def unseen_projects(conn: sa.Connection, seen_ids: Collection[str]) -> list[ProjectRef]:
    """Live projects that no directory listed."""
    p = logikal_projects.c
    seen = set(seen_ids)
    rows = conn.execute(
        sa.select(p.id, p.name, p.directory_path, p.job_number).where(p.deleted_at.is_(None)).order_by(p.id)
    )
    return [ProjectRef(*row) for row in rows if row[0] not in seen]


def mark_projects_deleted(conn: sa.Connection, project_ids: Sequence[str], now: datetime) -> None:
    """Projects gone from the source, with their phases and elevations.

    The project rows are updated first: that locks them (PostgreSQL) before any
    child row, in the order a contents writer takes its locks, so the two never
    deadlock and the children written by a contents sync that got there first
    are marked too.
    """
    for start in range(0, len(project_ids), BATCH):
        batch = list(project_ids[start : start + BATCH])
        conn.execute(
            sa.update(logikal_projects)
            .where(logikal_projects.c.id.in_(batch), logikal_projects.c.deleted_at.is_(None))
            .values(deleted_at=now, synced_at=now)
        )
        for table in (logikal_phases, logikal_elevations):
            conn.execute(
                sa.update(table)
                .where(table.c.project_id.in_(batch), table.c.deleted_at.is_(None))
                .values(deleted_at=now, synced_at=now)
            )


def deleted_project_ids(conn: sa.Connection) -> set[str]:
    query = sa.select(logikal_projects.c.id).where(logikal_projects.c.deleted_at.is_not(None))
    return set(conn.execute(query).scalars())


def forget_contents_sync(conn: sa.Connection, project_ids: Collection[str]) -> None:
    """Projects back from the dead: their phases and elevations were marked deleted with them, so
    their contents count as never synced and the project-sync sensor picks them up as new."""
    ids = sorted(project_ids)
    for start in range(0, len(ids), BATCH):
        conn.execute(
            sa.update(logikal_projects)
            .where(logikal_projects.c.id.in_(ids[start : start + BATCH]))
            .values(contents_synced_at=None, contents_changed_at=None)
        )


def live_project_ids(conn: sa.Connection) -> set[str]:
    query = sa.select(logikal_projects.c.id).where(logikal_projects.c.deleted_at.is_(None))
    return set(conn.execute(query).scalars())


@dataclass(frozen=True)
class StoredProject:
    id: str
    name: str
    directory_path: str
    changed_at: datetime | None
    contents_synced_at: datetime | None
    deleted_at: datetime | None


def load_project(conn: sa.Connection, project_id: str) -> StoredProject | None:
    p = logikal_projects.c
    row = conn.execute(
        sa.select(p.id, p.name, p.directory_path, p.changed_at, p.contents_synced_at, p.deleted_at).where(
            p.id == project_id
        )
    ).one_or_none()
    return None if row is None else StoredProject(*row)


def lock_project(conn: sa.Connection, project_id: str) -> StoredProject | None:
    """The project's row, locked until the transaction ends (FOR UPDATE on PostgreSQL).

    On SQLite `write_transaction` already holds the database's write lock.
    """
    p = logikal_projects.c
    row = conn.execute(
        sa.select(p.id, p.name, p.directory_path, p.changed_at, p.contents_synced_at, p.deleted_at)
        .where(p.id == project_id)
        .with_for_update()
    ).one_or_none()
    return None if row is None else StoredProject(*row)


def mark_contents_synced(
    conn: sa.Connection, project_id: str, changed_at: datetime | None, now: datetime
) -> None:
    conn.execute(
        sa.update(logikal_projects)
        .where(logikal_projects.c.id == project_id)
        .values(contents_synced_at=now, contents_changed_at=changed_at)
    )

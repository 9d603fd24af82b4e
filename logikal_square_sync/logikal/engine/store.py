"""Warehouse reads and writes of the LogiKal sync (SQLAlchemy Core, bulk statements).

Every function takes the caller's connection, so the caller decides what
commits together: a project's listing (phases, elevations and the rows that
vanished) in one transaction, each parts list in its own, as it arrives.

The projects sync and a project's contents sync run in different runs and may
overlap. Both write a project's rows inside `write_transaction`, and both
start by locking the project's row (`lock_project`, or the UPDATE that marks it
deleted), so their transactions touching one project run one after the other:
the contents writer sees a deletion committed before it and then writes
nothing live, and a deletion committed after it also marks what it wrote.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from logikal_square_sync.logikal.engine.parts_list_parser import (
    BROKEN_AT_SOURCE,
    FETCH_FAILED,
    INVALID,
    SUMMARY_COLUMNS,
    ParsedPartsList,
)
from logikal_square_sync.logikal.engine.records import (
    DirectoryRecord,
    ElevationRecord,
    PhaseRecord,
    ProjectRecord,
)
from logikal_square_sync.warehouse.quarantine import quarantine, release_written, screen_rows
from logikal_square_sync.warehouse.tables import (
    logikal_directories,
    logikal_elevation_glass,
    logikal_elevations,
    logikal_parts_list_files,
    logikal_parts_lists,
    logikal_phases,
    logikal_projects,
    sync_state,
)
from logikal_square_sync.warehouse.upsert import upsert

_BATCH = 500

# The sync_state stream holding what the server answered to sibling elevation selects.
SIBLINGS_STREAM = "logikal/sibling_elevation_select"


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


def _upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> Changes:
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
    for start in range(0, len(rows), _BATCH):
        result = upsert(conn, table, rows[start : start + _BATCH])
        changes.inserted += result.inserted
        changes.updated += result.updated
    release_written(conn, SOURCE, object_type, table, rows)
    changes.rejected = [rejection.record_id for rejection in refused]
    return changes


def _key_clause(table: sa.Table, keys: Sequence[tuple[Any, ...]]) -> sa.ColumnElement[bool]:
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
    for start in range(0, len(gone), _BATCH):
        batch = gone[start : start + _BATCH]
        conn.execute(sa.update(table).where(_key_clause(table, batch)).values(deleted_at=now, synced_at=now))
    return gone


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
    changes = _upsert(conn, logikal_directories, _directory_rows(found, now))
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
    return _upsert(conn, logikal_projects, _project_rows(found, now))


@dataclass(frozen=True)
class ProjectRef:
    id: str
    name: str
    directory_path: str

    def describe(self) -> str:
        return f"{self.name} ({self.id}) in '{self.directory_path}'"


def unseen_projects(conn: sa.Connection, seen_ids: Collection[str]) -> list[ProjectRef]:
    """Live projects that no directory listed."""
    p = logikal_projects.c
    seen = set(seen_ids)
    rows = conn.execute(
        sa.select(p.id, p.name, p.directory_path).where(p.deleted_at.is_(None)).order_by(p.id)
    )
    return [ProjectRef(*row) for row in rows if row[0] not in seen]


def mark_projects_deleted(conn: sa.Connection, project_ids: Sequence[str], now: datetime) -> None:
    """Projects gone from the source, with their phases and elevations.

    The project rows are updated first: that locks them (PostgreSQL) before any
    child row, in the order a contents writer takes its locks, so the two never
    deadlock and the children written by a contents sync that got there first
    are marked too.
    """
    for start in range(0, len(project_ids), _BATCH):
        batch = list(project_ids[start : start + _BATCH])
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
    for start in range(0, len(ids), _BATCH):
        conn.execute(
            sa.update(logikal_projects)
            .where(logikal_projects.c.id.in_(ids[start : start + _BATCH]))
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


# -- phases and elevations ------------------------------------------------------------


@dataclass(frozen=True)
class StoredListing:
    """A project's live phases and elevations in the warehouse, with their names."""

    phases: Mapping[str, str]  # phase id -> name
    elevations: Mapping[str, Mapping[str, str]]  # phase id -> {elevation id -> name}

    def elevations_in(self, phase_id: str) -> Mapping[str, str]:
        return self.elevations.get(phase_id, {})

    @property
    def elevation_count(self) -> int:
        return sum(map(len, self.elevations.values()))


def live_listing(conn: sa.Connection, project_id: str) -> StoredListing:
    """What the warehouse holds live of the project: a listing that lacks any of it is confirmed first."""
    ph, e = logikal_phases.c, logikal_elevations.c
    phases = conn.execute(
        sa.select(ph.id, ph.name).where(ph.project_id == project_id, ph.deleted_at.is_(None))
    )
    elevations: dict[str, dict[str, str]] = {}
    rows = conn.execute(
        sa.select(e.phase_id, e.id, e.name).where(e.project_id == project_id, e.deleted_at.is_(None))
    )
    for phase_id, elevation_id, name in rows:
        elevations.setdefault(phase_id, {})[elevation_id] = name or ""
    return StoredListing({phase_id: name or "" for phase_id, name in phases}, elevations)


@dataclass
class ListingChanges:
    phases: Changes
    elevations: Changes


def write_listing(
    conn: sa.Connection,
    project_id: str,
    phases: Sequence[PhaseRecord],
    elevations: Mapping[str, Sequence[ElevationRecord]],
    now: datetime,
    *,
    include_phases: bool = True,
    include_elevations: bool = True,
) -> ListingChanges:
    """Upsert one project's phases and elevations; mark those gone from the source deleted."""
    result = ListingChanges(Changes(), Changes())
    if include_phases:
        rows = [
            {
                "project_id": project_id,
                "id": phase.id,
                "name": phase.name,
                "description": phase.description,
                "synced_at": now,
                "deleted_at": None,
            }
            for phase in phases
        ]
        result.phases = _upsert(conn, logikal_phases, rows)
        seen = {(project_id, phase.id) for phase in phases}
        scope = logikal_phases.c.project_id == project_id
        result.phases.deleted = len(mark_vanished(conn, logikal_phases, seen, now, scope))
    if include_elevations:
        elevation_rows: list[dict[str, Any]] = [
            {
                "id": e.id,
                "project_id": project_id,
                "phase_id": phase_id,
                "name": e.name,
                "version_id": e.version_id,
                "amount": e.amount,
                "width": e.width,
                "height": e.height,
                "system_description": e.system_description,
                "user_description": e.user_description,
                "created_at": e.created_at,
                "changed_at": e.changed_at,
                "is_in_recycle_bin": e.is_in_recycle_bin,
                "synced_at": now,
                "deleted_at": None,
            }
            for phase_id, listed in elevations.items()
            for e in listed
        ]
        result.elevations = _upsert(conn, logikal_elevations, elevation_rows)
        seen_elevations = {(row["id"],) for row in elevation_rows}
        scope = logikal_elevations.c.project_id == project_id
        result.elevations.deleted = len(mark_vanished(conn, logikal_elevations, seen_elevations, now, scope))
    return result


def mark_elevation_gone(conn: sa.Connection, elevation_id: str, now: datetime) -> Changes:
    """The elevation answered 404 on select: it went away after it was listed."""
    result = conn.execute(
        sa.update(logikal_elevations)
        .where(logikal_elevations.c.id == elevation_id, logikal_elevations.c.deleted_at.is_(None))
        .values(deleted_at=now, synced_at=now)
    )
    return Changes(deleted=result.rowcount)


# -- parts lists --------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPartsList:
    version_id: str | None
    changed_at: datetime | None
    parse_status: str
    # The file is there, and is not a damaged one that no second fetch confirmed (`_unconfirmed_invalid`).
    has_file: bool


def _unconfirmed_invalid() -> sa.ColumnElement[bool]:
    """An `invalid` row no second fetch confirmed broken at the source: stored before damaged downloads
    were told apart (`damaged_parts_lists`), so possibly a download gone wrong; fetched again."""
    pl = logikal_parts_lists.c
    return sa.and_(
        pl.parse_status == INVALID,
        sa.not_(sa.func.coalesce(pl.parse_error, "").startswith(BROKEN_AT_SOURCE, autoescape=True)),
    )


def stored_parts_lists(conn: sa.Connection, project_id: str) -> dict[str, StoredPartsList]:
    """The parts lists stored for a project's elevations, with whether their file is still there."""
    pl, files, elevations = logikal_parts_lists, logikal_parts_list_files, logikal_elevations
    query = (
        sa.select(
            pl.c.elevation_id,
            pl.c.elevation_version_id,
            pl.c.elevation_changed_at,
            pl.c.parse_status,
            sa.and_(files.c.sha256.is_not(None), sa.not_(_unconfirmed_invalid())),
        )
        .join(elevations, elevations.c.id == pl.c.elevation_id)
        .outerjoin(files, files.c.sha256 == pl.c.sha256)
        .where(elevations.c.project_id == project_id)
    )
    return {row[0]: StoredPartsList(row[1], row[2], row[3], bool(row[4])) for row in conn.execute(query)}


def _unfetched(query: sa.Select[Any]) -> sa.Select[Any]:
    """`query` over live elevations whose parts list is missing, failed, older than the elevation, or
    stored damaged without a second fetch confirming it."""
    e, pl, files = logikal_elevations, logikal_parts_lists, logikal_parts_list_files
    return (
        query.select_from(e)
        .outerjoin(pl, pl.c.elevation_id == e.c.id)
        .outerjoin(files, files.c.sha256 == pl.c.sha256)
        .where(
            e.c.deleted_at.is_(None),
            e.c.is_in_recycle_bin.is_(False),
            sa.or_(
                files.c.sha256.is_(None),
                _unconfirmed_invalid(),
                pl.c.elevation_version_id.is_distinct_from(e.c.version_id),
                pl.c.elevation_changed_at.is_distinct_from(e.c.changed_at),
            ),
        )
    )


def pending_parts_lists(conn: sa.Connection, project_id: str) -> int:
    """Stored live elevations whose parts list is missing or older than the elevation (work known upfront)."""
    query = _unfetched(sa.select(sa.func.count())).where(logikal_elevations.c.project_id == project_id)
    return conn.execute(query).scalar_one()


def unfetched_counts() -> sa.Subquery:
    """Per project (`project_id`, `unfetched`): its live elevations without a current parts list."""
    e = logikal_elevations.c
    return (
        _unfetched(sa.select(e.project_id, sa.func.count().label("unfetched")))
        .group_by(e.project_id)
        .subquery()
    )


@dataclass(frozen=True)
class UnfetchedElevation:
    project_id: str
    id: str
    name: str
    reason: str


def unfetched_elevations(conn: sa.Connection, project_ids: Collection[str]) -> list[UnfetchedElevation]:
    """The elevations of these projects whose current parts list is not in the warehouse, and why."""
    if not project_ids:
        return []
    e, pl = logikal_elevations.c, logikal_parts_lists.c
    query = _unfetched(sa.select(e.project_id, e.id, e.name, pl.parse_status, pl.parse_error)).where(
        e.project_id.in_(sorted(project_ids))
    )
    found = []
    for project_id, elevation_id, name, status, error in conn.execute(query.order_by(e.project_id, e.name)):
        if status == FETCH_FAILED:
            reason = f"fetch failed: {error}"
        elif status == INVALID and not (error or "").startswith(BROKEN_AT_SOURCE):
            reason = f"stored damaged, not yet confirmed broken at the source: {error}"
        elif status is None:
            reason = "never fetched"
        else:
            reason = "changed since its stored copy; the new one not fetched"
        found.append(UnfetchedElevation(project_id, elevation_id, name or "", reason))
    return found


def _insert_ignore(conn: sa.Connection, table: sa.Table, row: Mapping[str, Any]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**row).on_conflict_do_nothing())


def _drop_unreferenced_file(conn: sa.Connection, sha256: str | None) -> None:
    if sha256 is None:
        return
    still_used = conn.execute(
        sa.select(sa.literal(1)).where(logikal_parts_lists.c.sha256 == sha256).limit(1)
    ).first()
    if still_used is None:
        conn.execute(sa.delete(logikal_parts_list_files).where(logikal_parts_list_files.c.sha256 == sha256))


def write_parts_list(
    conn: sa.Connection, elevation: ElevationRecord, content: bytes, parsed: ParsedPartsList, now: datetime
) -> Changes:
    """Store the file by hash, its row and its glass; a superseded file no row uses is dropped.

    Returns the change to the `logikal_parts_lists` row (the glass rows are `parsed.glass`).
    """
    previous = conn.execute(
        sa.select(logikal_parts_lists.c.sha256).where(logikal_parts_lists.c.elevation_id == elevation.id)
    ).scalar()
    _insert_ignore(
        conn,
        logikal_parts_list_files,
        {"sha256": parsed.sha256, "size_bytes": parsed.size_bytes, "content": content, "stored_at": now},
    )
    row = {
        "elevation_id": elevation.id,
        "sha256": parsed.sha256,
        "size_bytes": parsed.size_bytes,
        "elevation_version_id": elevation.version_id,
        "elevation_changed_at": elevation.changed_at,
        "fetched_at": now,
        "parse_status": parsed.parse_status,
        "parse_error": parsed.parse_error,
        **{column: parsed.summary.get(column) for column in SUMMARY_COLUMNS.values()},
    }
    written = upsert(conn, logikal_parts_lists, [row])
    conn.execute(
        sa.delete(logikal_elevation_glass).where(logikal_elevation_glass.c.elevation_id == elevation.id)
    )
    if parsed.glass:
        conn.execute(
            sa.insert(logikal_elevation_glass),
            [{"elevation_id": elevation.id, **glass} for glass in parsed.glass],
        )
    if previous != parsed.sha256:
        _drop_unreferenced_file(conn, previous)
    return Changes(inserted=written.inserted, updated=written.updated)


def record_fetch_failure(
    conn: sa.Connection, elevation: ElevationRecord, error: str, now: datetime
) -> Changes:
    """A parts list that could not be fetched: a stored copy stays; without one, the failure is the row.

    The row keeps no elevation version, so the next sync tries again. Returns the row's change.
    """
    exists = conn.execute(
        sa.select(logikal_parts_lists.c.parse_status).where(
            logikal_parts_lists.c.elevation_id == elevation.id
        )
    ).first()
    row = {
        "elevation_id": elevation.id,
        "fetched_at": now,
        "parse_status": FETCH_FAILED,
        "parse_error": error,
    }
    if exists is None:
        conn.execute(sa.insert(logikal_parts_lists).values(**row))
        return Changes(inserted=1)
    if exists[0] == FETCH_FAILED:
        conn.execute(
            sa.update(logikal_parts_lists)
            .where(logikal_parts_lists.c.elevation_id == elevation.id)
            .values(fetched_at=now, parse_error=error)
        )
        return Changes(updated=1)
    return Changes()


# -- what the server answers to sibling elevation selects ----------------------------


@dataclass(frozen=True)
class SiblingRefusal:
    status: int
    since: datetime


def load_sibling_refusal(conn: sa.Connection) -> SiblingRefusal | None:
    """The refusal an earlier run learned (`refused 405` / `refused 409` in sync_state), if any."""
    state = sync_state.c
    row = conn.execute(
        sa.select(state.watermark, state.updated_at).where(state.stream == SIBLINGS_STREAM)
    ).one_or_none()
    if row is None or not row[0] or not row[0].startswith("refused "):
        return None
    try:
        return SiblingRefusal(int(row[0].removeprefix("refused ")), row[1])
    except ValueError:
        return None


def save_sibling_refusal(conn: sa.Connection, status: int, now: datetime) -> None:
    row = {"stream": SIBLINGS_STREAM, "watermark": f"refused {status}", "updated_at": now}
    upsert(conn, sync_state, [row])

"""A LogiKal project's contents in the warehouse: phases, elevations and parts lists.

Every write of a project's contents goes through `write_if_live`, which writes nothing once
the project is marked deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.logikal.engine.client.parts_list_parser import (
    BROKEN_AT_SOURCE,
    FETCH_FAILED,
    INVALID,
    SUMMARY_COLUMNS,
    ParsedPartsList,
)
from logikal_square_sync.logikal.engine.client.records import (
    ElevationRecord,
    PhaseRecord,
)
from logikal_square_sync.logikal.engine.store.tree import lock_project
from logikal_square_sync.logikal.engine.store.writes import (
    Changes,
    mark_vanished,
    upsert_rows,
    write_transaction,
)
from logikal_square_sync.warehouse.tables import (
    logikal_elevation_glass,
    logikal_elevations,
    logikal_parts_list_files,
    logikal_parts_lists,
    logikal_phases,
    sync_state,
)
from logikal_square_sync.warehouse.upsert import insert_for, upsert

# -- writes that hold the project ---------------------------------------------------


def write_if_live(
    engine: sa.Engine, project_id: str, write: Callable[[sa.Connection], Any]
) -> tuple[bool, datetime | None]:
    """Run `write` in a transaction that holds the project's row, unless the project is marked deleted.

    Returns (written, the project's deleted_at).
    """
    with write_transaction(engine) as conn:
        project = lock_project(conn, project_id)
        if project is None or project.deleted_at is not None:
            return False, project.deleted_at if project is not None else None
        write(conn)
        return True, None


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
        result.phases = upsert_rows(conn, logikal_phases, rows)
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
        result.elevations = upsert_rows(conn, logikal_elevations, elevation_rows)
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
    conn.execute(insert_for(conn, table).values(**row).on_conflict_do_nothing())


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

# The sync_state stream holding what the server answered to sibling elevation selects.
SIBLINGS_STREAM = "logikal/sibling_elevation_select"


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

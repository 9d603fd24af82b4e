"""Parts-list files that arrived damaged, remembered until the next fetch of the same elevation.

A damaged file (`parts_list_parser.damage`, or one SQLite cannot read) is
either a download gone wrong (a gateway or the server cutting the answer short)
or a file LogiKal itself produces broken. One fetch cannot tell them apart; a
second can: a download gone wrong rarely goes wrong the same way twice, a file
broken at the source comes back byte for byte. So the first damaged fetch is a
failed fetch, and the hash of its bytes is kept here; when the next fetch of
the elevation brings the same hash, the file is recorded `invalid` as LogiKal
serves it.

One `sync_state` row per elevation, stream `logikal/damaged_parts_list/<elevation id>`:
`watermark` the sha256 of the damaged bytes, `updated_at` when they arrived.
Kept in `sync_state` (like `project_failures`) because it is the sync's own
bookkeeping, not data of the elevation; a good file or the confirmed
`invalid` one deletes the row (a deleted elevation's row stays: one short row, never read).

`broken_at_source` names the elevations whose current file is stored `invalid`,
for the `parts_lists_readable` check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from logikal_square_sync.logikal.engine.client.parts_list_parser import BROKEN_AT_SOURCE, INVALID
from logikal_square_sync.warehouse.tables import (
    logikal_elevations,
    logikal_parts_lists,
    logikal_projects,
    sync_state,
)
from logikal_square_sync.warehouse.upsert import upsert

DAMAGED_PREFIX = "logikal/damaged_parts_list/"


def _stream(elevation_id: str) -> str:
    return DAMAGED_PREFIX + elevation_id


def damaged_before(conn: sa.Connection, elevation_id: str) -> str | None:
    """The hash of the damaged file the last fetch of this elevation brought, if it did."""
    query = sa.select(sync_state.c.watermark).where(sync_state.c.stream == _stream(elevation_id))
    return conn.execute(query).scalar()


def remember_damaged(conn: sa.Connection, elevation_id: str, sha256: str, now: datetime) -> None:
    upsert(conn, sync_state, [{"stream": _stream(elevation_id), "watermark": sha256, "updated_at": now}])


def forget_damaged(conn: sa.Connection, elevation_id: str) -> None:
    conn.execute(sa.delete(sync_state).where(sync_state.c.stream == _stream(elevation_id)))


@dataclass(frozen=True)
class BrokenPartsList:
    project_id: str
    project_name: str
    elevation_id: str
    elevation_name: str
    error: str


def broken_at_source(conn: sa.Connection) -> list[BrokenPartsList]:
    """Live elevations whose current parts list LogiKal serves damaged (stored `invalid`)."""
    e, p, pl = logikal_elevations.c, logikal_projects.c, logikal_parts_lists.c
    query = (
        sa.select(e.project_id, p.name, e.id, e.name, pl.parse_error)
        .select_from(logikal_elevations)
        .join(logikal_projects, logikal_projects.c.id == e.project_id)
        .join(logikal_parts_lists, pl.elevation_id == e.id)
        .where(
            e.deleted_at.is_(None),
            p.deleted_at.is_(None),
            e.is_in_recycle_bin.is_(False),
            pl.parse_status == INVALID,
            # Confirmed by a second fetch; an `invalid` row an older sync stored after one is refetched.
            pl.parse_error.startswith(BROKEN_AT_SOURCE, autoescape=True),
            # A stored copy of an older version is refetched anyway: only the current one counts.
            pl.elevation_version_id.is_not_distinct_from(e.version_id),
        )
        .order_by(p.name, e.name, e.id)
    )
    return [
        BrokenPartsList(project_id, project or "", elevation_id, elevation or "", error or "")
        for project_id, project, elevation_id, elevation, error in conn.execute(query)
    ]

"""Each project's failed syncs in a row, in the warehouse's `sync_state` (the sensor backs off on them).

One row per failing project, stream `logikal/project_failures/<project id>`:
`watermark` is `failed <n> since <ISO time>` (syncs in a row that failed or
left parts lists unfetched, and when the first of them did), `updated_at` the
last one. A full sync deletes the row in the
transaction that marks the project synced.

Kept here and not read from Dagster's run records because the sync itself
knows what counts: a run that left a locked elevation's parts list unfetched,
or found the project moved, succeeds in Dagster but failed for the backoff;
and the sensor reads every project's count with the project list in one
query instead of one run-history query per partition.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from logikal_square_sync.warehouse.tables import sync_state
from logikal_square_sync.warehouse.upsert import upsert

FAILURES_PREFIX = "logikal/project_failures/"
_MARK = "failed "


@dataclass(frozen=True)
class ProjectFailures:
    count: int
    last_failed_at: datetime
    since: datetime


def stream_of(project_id: str) -> str:
    return FAILURES_PREFIX + project_id


def parse(watermark: str | None, last_failed_at: datetime) -> ProjectFailures:
    """A `failed <n> since <time>` watermark; anything unreadable counts as one failure, at the last."""
    count, since = 1, last_failed_at
    parts = (watermark or "").split(" ")
    if len(parts) == 4 and parts[0] == _MARK.strip() and parts[1].isdigit() and parts[2] == "since":
        count = max(int(parts[1]), 1)
        with contextlib.suppress(ValueError):  # unreadable: since the last failure
            since = datetime.fromisoformat(parts[3])
    return ProjectFailures(count, last_failed_at, since)


def load_failures(conn: sa.Connection, project_id: str) -> ProjectFailures | None:
    row = conn.execute(
        sa.select(sync_state.c.watermark, sync_state.c.updated_at).where(
            sync_state.c.stream == stream_of(project_id)
        )
    ).one_or_none()
    return None if row is None else parse(row[0], row[1])


def record_failure(conn: sa.Connection, project_id: str, now: datetime) -> int:
    """One more failure in a row for the project; returns how many now."""
    previous = load_failures(conn, project_id)
    count = (previous.count if previous else 0) + 1
    since = previous.since if previous else now
    upsert(
        conn,
        sync_state,
        [
            {
                "stream": stream_of(project_id),
                "watermark": f"{_MARK}{count} since {since.isoformat()}",
                "updated_at": now,
            }
        ],
    )
    return count


def clear_failures(conn: sa.Connection, project_id: str) -> None:
    conn.execute(sa.delete(sync_state).where(sync_state.c.stream == stream_of(project_id)))

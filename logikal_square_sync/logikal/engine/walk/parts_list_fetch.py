"""One parts list, in a session that can reach its phase: select the elevation, fetch, parse, store.

Whether the server lets a session select an elevation from a sibling's
elevation state is unknown, and so is how it refuses (405 or 409,
docs/logikal-api.md §5). Either answer to a sibling select makes the pool
suspect a refusal, and the elevation goes back to its phase's queue; the next
select of it, from phase state in another session, settles it (a 409 from a
sibling that phase state repeats is a lock, not a refusal).

A locked elevation (409 from phase state) or a file the server sends garbled is
recorded and does not stop the others. A file that is not a whole, readable
SQLite database is a failed fetch: the stored copy stays and the next sync
fetches it again; only when that fetch brings the same bytes is it stored as
LogiKal serves it, with status `invalid`, broken at the source
(`damaged_parts_lists`). A 404 on a select counts as gone only
once fresh listings confirm it (`not_found_confirmation`).

Parsing and writing go through `after_listing`: the walk's writer thread does
them after the project's listing is written (a listing written after them would
undo an elevation marked gone), so the session goes on to the next parts list
meanwhile. Every write goes through `write_if_live`, which writes nothing once
the project is marked deleted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from enum import Enum

import sqlalchemy as sa

from logikal_square_sync.logikal.engine.client.errors import (
    LogikalApiError,
    LogikalConflictError,
    LogikalNotFoundError,
    LogikalResponseError,
    LogikalWrongStateError,
)
from logikal_square_sync.logikal.engine.client.navigation import State, Target
from logikal_square_sync.logikal.engine.client.parts_list_parser import (
    BROKEN_AT_SOURCE,
    INVALID,
    ParsedPartsList,
    parse_parts_list,
)
from logikal_square_sync.logikal.engine.client.records import ElevationRecord
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.store.contents import (
    StoredPartsList,
    mark_elevation_gone,
    record_fetch_failure,
    write_if_live,
    write_parts_list,
)
from logikal_square_sync.logikal.engine.store.tree import StoredProject
from logikal_square_sync.logikal.engine.store.writes import Changes
from logikal_square_sync.logikal.engine.walk.damaged_parts_lists import (
    damaged_before,
    forget_damaged,
    remember_damaged,
)
from logikal_square_sync.logikal.engine.walk.not_found_confirmation import elevation_listed, reach_after_404
from logikal_square_sync.logikal.engine.walk.result import ProjectContentsResult

log = logging.getLogger(__name__)


def needs_parts_list(
    elevation: ElevationRecord, stored: StoredPartsList | None, *, refetch: bool = False
) -> bool:
    """New, changed, or no stored copy; never for elevations in the recycle bin."""
    if elevation.is_in_recycle_bin:
        return False
    if refetch or stored is None or not stored.has_file:
        return True
    return stored.version_id != elevation.version_id or stored.changed_at != elevation.changed_at


class _Selected(Enum):
    FROM_PHASE = "from phase state"
    FROM_SIBLING = "from a sibling's elevation state"
    GONE = "gone"
    SIBLING_REFUSED = "sibling select refused"
    LOCKED = "locked"


class PartsListFetcher:
    """Fetches, parses and stores parts lists one at a time; shared by the worker threads."""

    def __init__(
        self,
        pool: SessionPool,
        engine: sa.Engine,
        project: StoredProject,
        result: ProjectContentsResult,
        now: datetime,
        after_listing: Callable[[Callable[[], None]], None],
    ) -> None:
        self.pool, self.engine, self.project = pool, engine, project
        self.result, self.now = result, now
        self.after_listing = after_listing
        self._lock = threading.Lock()

    @property
    def project_deleted(self) -> bool:
        return self.result.deleted_at is not None

    def fetch(self, session: LogikalSession, target: Target, elevation: ElevationRecord) -> bool:
        """Fetch and store one parts list; False when it must go back to its phase's queue.

        That is when a select from a sibling's elevation state was refused:
        refused siblings, or (a 409) this elevation locked; a select from phase
        state, in the session that takes it next, tells which.
        """
        selected, error = self._select(session, target, elevation)
        if selected is _Selected.GONE:
            self.after_listing(lambda: self._gone(elevation))
            return True
        if selected is _Selected.SIBLING_REFUSED:
            assert error is not None
            self.pool.suspect_sibling_refusal(elevation.id, error.status)
            return False
        if selected is _Selected.LOCKED:
            assert error is not None
            self.pool.settle_siblings(elevation.id, selectable_from_phase=False)
            reason = f"select refused (locked or in use): {error.server_message}"
            self.after_listing(lambda: self._failed(elevation, reason))
            return True
        if selected is _Selected.FROM_PHASE:
            self.pool.settle_siblings(elevation.id, selectable_from_phase=True)
        else:
            self.pool.note_sibling_select()
        try:
            content = session.parts_list()
        except LogikalWrongStateError:
            raise
        except (LogikalApiError, LogikalResponseError) as failure:
            reason = str(failure)
            self.after_listing(lambda: self._failed(elevation, reason))
            return True
        self.after_listing(lambda: self._store(elevation, content))
        return True

    def _select(
        self, session: LogikalSession, target: Target, elevation: ElevationRecord
    ) -> tuple[_Selected, LogikalApiError | None]:
        """Select the elevation (moving the session to its phase first if need be)."""
        try:
            session.goto(target, sibling_elevations=self.pool.sibling_elevations)
        except (LogikalNotFoundError, LogikalConflictError):
            # The phase or project is not there (404), or no longer exists under this session (409):
            # whether the elevation is still listed decides between gone and a transient refusal.
            return self._confirm(session, target, elevation)
        from_sibling = session.cursor.state is State.ELEVATION
        try:
            session.select_elevation(elevation.id)
        except LogikalNotFoundError:
            return self._confirm(session, target, elevation)
        except (LogikalConflictError, LogikalWrongStateError) as error:
            if from_sibling:
                return _Selected.SIBLING_REFUSED, error
            if isinstance(error, LogikalWrongStateError):
                raise  # 405 from phase state: a planner bug, never a data problem
            return _Selected.LOCKED, error
        return (_Selected.FROM_SIBLING if from_sibling else _Selected.FROM_PHASE), None

    def _confirm(
        self, session: LogikalSession, target: Target, elevation: ElevationRecord
    ) -> tuple[_Selected, LogikalApiError | None]:
        project = self.project
        try:
            found = reach_after_404(
                session,
                listed=lambda s: elevation_listed(
                    s, project.directory_path, project.id, target.phase_id or "", elevation.id
                ),
                reach=lambda s: s.select_elevation(elevation.id),
                what=f"elevation {elevation.name!r} ({elevation.id}) of LogiKal project {project.name!r}",
            )
        except LogikalConflictError as error:
            return _Selected.LOCKED, error  # selected from phase state in the fresh session: locked
        return (_Selected.FROM_PHASE if found else _Selected.GONE), None

    def _write(self, write: Callable[[sa.Connection], Changes]) -> Changes | None:
        """The rows `write` changed, or None when the project is marked deleted (nothing written)."""
        changes: list[Changes] = []
        written, deleted_at = write_if_live(
            self.engine, self.project.id, lambda conn: changes.append(write(conn))
        )
        if written:
            return changes[0]
        if self.result.deleted_at is None:
            self.result.deleted_at = deleted_at or self.now
            log.warning(
                f"LogiKal project {self.project.name!r} ({self.project.id}) was marked deleted while its "
                "contents synced: nothing more is written for it"
            )
        return None

    def _store(self, elevation: ElevationRecord, content: bytes) -> None:
        parsed = parse_parts_list(content, elevation.name)
        if parsed.parse_status == INVALID:
            self._damaged(elevation, content, parsed)
            return

        def write(conn: sa.Connection) -> Changes:
            forget_damaged(conn, elevation.id)
            return write_parts_list(conn, elevation, content, parsed, self.now)

        with self._lock:
            self._stored(elevation, parsed, self._write(write))

    def _damaged(self, elevation: ElevationRecord, content: bytes, parsed: ParsedPartsList) -> None:
        """A failed fetch the first time; the same bytes on the next fetch: broken at the source."""
        confirmed: list[bool] = []
        reason = f"damaged download, fetched again by the next sync: {parsed.parse_error}"
        at_source = replace(parsed, parse_error=f"{BROKEN_AT_SOURCE}: {parsed.parse_error}")

        def write(conn: sa.Connection) -> Changes:
            confirmed.append(damaged_before(conn, elevation.id) == parsed.sha256)
            if confirmed[0]:
                forget_damaged(conn, elevation.id)
                return write_parts_list(conn, elevation, content, at_source, self.now)
            remember_damaged(conn, elevation.id, parsed.sha256, self.now)
            return record_fetch_failure(conn, elevation, reason, self.now)

        with self._lock:
            changes = self._write(write)
            if changes is not None and confirmed[0]:
                self._stored(elevation, at_source, changes)
            elif changes is not None:
                self._count_failure(elevation, reason, changes)

    def _stored(self, elevation: ElevationRecord, parsed: ParsedPartsList, changes: Changes | None) -> None:
        """Count a stored file (the caller holds the lock)."""
        if changes is None:
            return
        report = self.result.parts_lists
        report.add_rows(changes)
        report.child_rows_written += len(parsed.glass)
        report.read += 1
        self.result.parts_lists_fetched += 1
        self.result.parse_status[parsed.parse_status] += 1
        if parsed.parse_error:
            log.warning(
                f"LogiKal parts list of elevation {elevation.name!r} ({elevation.id}): "
                f"{parsed.parse_status}: {parsed.parse_error}"
            )

    def _failed(self, elevation: ElevationRecord, reason: str) -> None:
        with self._lock:
            changes = self._write(lambda conn: record_fetch_failure(conn, elevation, reason, self.now))
            if changes is not None:
                self._count_failure(elevation, reason, changes)

    def _count_failure(self, elevation: ElevationRecord, reason: str, changes: Changes) -> None:
        """Count a parts list left unfetched (the caller holds the lock)."""
        message = f"elevation {elevation.name!r} ({elevation.id}): {reason}"
        self.result.parts_lists.add_rows(changes)
        self.result.parts_lists_failed += 1
        self.result.failures.append(message)
        log.warning(f"LogiKal parts list not fetched for {message}; the next sync retries it")

    def _gone(self, elevation: ElevationRecord) -> None:
        with self._lock:
            changes = self._write(lambda conn: mark_elevation_gone(conn, elevation.id, self.now))
            if changes is not None:
                self.result.elevations.add_rows(changes)

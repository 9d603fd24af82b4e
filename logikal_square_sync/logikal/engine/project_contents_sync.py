"""Sync of one project: its phases, elevations and parts lists, with the fewest logins.

1. One session selects the project and lists it: `GET /phases`, then each
   phase in turn (sibling phases share the session) and its elevations.
2. The listing is written in one transaction; phases and elevations the
   source no longer lists get `deleted_at`.
3. Parts lists are fetched only for elevations that are new or changed
   (`versionId`, `changedDate`) or whose stored copy is missing; elevations in
   the recycle bin are skipped. Elevation state cannot leave its phase, so each
   phase with work gets a session (the listing session takes the phase it
   stands in), a big phase is split across idle sessions, and without sibling
   elevation selects every parts list gets its own login. Each file is hashed,
   parsed and committed as it arrives, so a crash loses only files in flight
   and the next run fetches exactly what is still missing.

A locked elevation (409) or a file the server sends garbled is recorded and
does not stop the others; anything unexpected fails the run after every
session has been logged out. A sync that left any parts list unfetched does not
mark the project synced (`contents_synced_at` keeps the last complete sync, so
the `project_contents_fresh` check sees it age and names the elevations), and
it counts as a failure for the sensor's backoff (`project_failures`) like an error or
the project found gone from its directory; a complete sync resets the count.

Whether the server lets a session select an elevation from a sibling's
elevation state is unknown, and so is how it refuses (405 or 409, docs/logikal-api.md §5).
Either answer to a sibling select makes the pool suspect a refusal; the next
select of that elevation, from phase state in another session, settles it
(a 409 from a sibling that phase state repeats is a lock, not a refusal). A
refusal is kept in the warehouse (`sync_state`) for a week, so the next runs
plan one session per parts list from the start.

A 404 on a select (the project, a phase, an elevation) counts as gone only
once fresh listings confirm it (`not_found_confirmation`). A project already marked deleted,
or confirmed gone from its directory, is not synced: the result says so and
nothing is written. Every write locks the project's row first and writes
nothing live once the project is marked deleted (`store`), so a projects sync
that marks it deleted meanwhile never leaves live phases or elevations behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.clock import utc_now
from logikal_square_sync.logikal.engine.client import LogikalSession
from logikal_square_sync.logikal.engine.errors import (
    LogikalApiError,
    LogikalConflictError,
    LogikalError,
    LogikalNotFoundError,
    LogikalResponseError,
    LogikalWrongStateError,
)
from logikal_square_sync.logikal.engine.navigation import State, Target, route
from logikal_square_sync.logikal.engine.not_found_confirmation import (
    elevation_listed,
    phase_listed,
    project_listed,
    reach_after_404,
)
from logikal_square_sync.logikal.engine.parts_list_parser import parse_parts_list
from logikal_square_sync.logikal.engine.planner import PartsListChunk, chunk_parts_lists
from logikal_square_sync.logikal.engine.project_failures import clear_failures, record_failure
from logikal_square_sync.logikal.engine.records import ElevationRecord, PhaseRecord
from logikal_square_sync.logikal.engine.session_pool import SessionPool
from logikal_square_sync.logikal.engine.store import (
    Changes,
    StoredPartsList,
    StoredProject,
    load_project,
    load_sibling_refusal,
    lock_project,
    mark_contents_synced,
    mark_elevation_gone,
    pending_parts_lists,
    record_fetch_failure,
    save_sibling_refusal,
    stored_parts_lists,
    write_listing,
    write_parts_list,
    write_transaction,
)
from logikal_square_sync.logikal.engine.task_runner import Task, TaskQueue, run_tasks
from logikal_square_sync.sync_report import FULL_REFRESH, INCREMENTAL, SyncReport

log = logging.getLogger(__name__)

PHASES, ELEVATIONS, PARTS_LISTS = "phases", "elevations", "parts_lists"
EVERYTHING = frozenset({PHASES, ELEVATIONS, PARTS_LISTS})

# How long a refusal of sibling elevation selects, once learned, is trusted before a
# run tries siblings again (a server's configuration may change; a retry costs one
# refused select).
SIBLING_REFUSAL_TRUSTED_FOR = timedelta(days=7)


class UnknownProjectError(LogikalError):
    """The project is not in the warehouse's project list."""


@dataclass
class ProjectListing:
    phases: list[PhaseRecord]
    elevations: dict[str, list[ElevationRecord]]  # by phase id, in the source's order


def _listed_in_full() -> SyncReport:
    return SyncReport(mode=FULL_REFRESH)


@dataclass
class ProjectContentsResult:
    """One walk's result: a report per asset (the walk's API counts and duration in each), and more."""

    project_id: str
    project_name: str
    # Every sync lists all of the project's phases and elevations; parts lists only when changed.
    phases: SyncReport = field(default_factory=_listed_in_full)
    elevations: SyncReport = field(default_factory=_listed_in_full)
    parts_lists: SyncReport = field(default_factory=SyncReport)
    parts_lists_fetched: int = 0
    parts_lists_skipped: int = 0
    parts_lists_failed: int = 0
    parse_status: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # Set when the project is (or, during this run, was) marked deleted in the warehouse.
    deleted_at: datetime | None = None
    # The project's directory no longer lists it (confirmed): deleted or moved at the source.
    gone_at_source: bool = False
    sibling_elevation_select: str = ""
    client: dict[str, Any] = field(default_factory=dict)  # the pool's own counters (diagnostics)

    @property
    def reports(self) -> dict[str, SyncReport]:
        return {PHASES: self.phases, ELEVATIONS: self.elevations, PARTS_LISTS: self.parts_lists}

    @property
    def not_synced_because(self) -> str | None:
        """Why the project's contents were not (all) synced, or None when they were."""
        if self.deleted_at is not None:
            return (
                f"LogiKal project {self.project_name!r} ({self.project_id}) was deleted at the source "
                f"(noticed {self.deleted_at:%Y-%m-%d %H:%M} UTC): nothing synced, its rows stay in the "
                "warehouse with deleted_at"
            )
        if self.gone_at_source:
            return (
                f"LogiKal project {self.project_name!r} ({self.project_id}) is no longer in its directory: "
                "deleted or moved at the source; nothing synced, and the next logikal/projects run records "
                "which"
            )
        return None


def needs_parts_list(
    elevation: ElevationRecord, stored: StoredPartsList | None, *, refetch: bool = False
) -> bool:
    """New, changed, or no stored copy; never for elevations in the recycle bin."""
    if elevation.is_in_recycle_bin:
        return False
    if refetch or stored is None or not stored.has_file:
        return True
    return stored.version_id != elevation.version_id or stored.changed_at != elevation.changed_at


def _project_target(
    project: StoredProject, phase_id: str | None = None, *, for_elevations: bool = False
) -> Target:
    return Target(project.directory_path, project.id, phase_id, for_elevations=for_elevations)


def list_project(
    session: LogikalSession, pool: SessionPool, project: StoredProject, *, with_elevations: bool
) -> ProjectListing | None:
    """Select the project, list its phases and (optionally) each phase's elevations, in one session.

    None when fresh listings confirm that the project's directory no longer holds it.
    """
    sibling = pool.sibling_elevations
    target = _project_target(project)
    try:
        session.goto(target, sibling_elevations=sibling)
    except LogikalNotFoundError:
        if not reach_after_404(
            session,
            listed=lambda s: project_listed(s, project.directory_path, project.id),
            reach=lambda s: s.goto(target, sibling_elevations=sibling),
            what=f"LogiKal project {project.name!r} ({project.id}) in '{project.directory_path}'",
        ):
            return None
    phases = session.list_phases()
    if not with_elevations:
        return ProjectListing(phases, {})
    listed: list[PhaseRecord] = []
    elevations: dict[str, list[ElevationRecord]] = {}
    for phase in phases:
        phase_target = _project_target(project, phase.id)
        try:
            session.goto(phase_target, sibling_elevations=sibling)
        except (LogikalNotFoundError, LogikalConflictError):
            # 409: the project or phase no longer exists under this session (deleted meanwhile).
            # Default arguments bind this iteration's phase (the calls happen within it anyway).
            def phase_is_listed(s: LogikalSession, phase_id: str = phase.id) -> bool:
                return phase_listed(s, project.directory_path, project.id, phase_id)

            def reach_phase(s: LogikalSession, target: Target = phase_target) -> None:
                s.goto(target, sibling_elevations=sibling)

            if not reach_after_404(
                session,
                listed=phase_is_listed,
                reach=reach_phase,
                what=f"phase {phase.name!r} ({phase.id}) of LogiKal project {project.name!r} ({project.id})",
            ):
                if session.cursor.project_id != project.id:
                    return None  # the walk did not even find the project: it went, not just the phase
                continue  # deleted since GET /phases: not part of the project any more
        elevations[phase.id] = session.list_elevations()
        listed.append(phase)
    return ProjectListing(listed, elevations)


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


class _Selected(Enum):
    FROM_PHASE = "from phase state"
    FROM_SIBLING = "from a sibling's elevation state"
    GONE = "gone"
    SIBLING_REFUSED = "sibling select refused"
    LOCKED = "locked"


class _PartsListFetcher:
    """Fetches, parses and stores parts lists chunk by chunk; shared by the worker threads."""

    def __init__(
        self,
        pool: SessionPool,
        engine: sa.Engine,
        project: StoredProject,
        elevations: Mapping[str, ElevationRecord],
        result: ProjectContentsResult,
        now: datetime,
    ) -> None:
        self.pool, self.engine, self.project = pool, engine, project
        self.elevations, self.result, self.now = elevations, result, now
        self._lock = threading.Lock()

    def task(self, chunk: PartsListChunk) -> Task:
        return Task(
            target=_project_target(self.project, chunk.phase_id, for_elevations=True),
            cost=chunk.cost(self.pool.costs),
            run=lambda session, queue: self.run_chunk(chunk, session, queue),
            label=f"{len(chunk.elevation_ids)} parts list(s) in phase {chunk.phase_id}",
        )

    def _requeue(self, chunk: PartsListChunk, start: int, queue: TaskQueue) -> None:
        remaining = chunk.elevation_ids[start:]
        # Without sibling selects each parts list needs a session: let the pool share them out.
        pieces = [(e,) for e in remaining] if self.pool.siblings_refused else [remaining]
        for piece in pieces:
            queue.put(self.task(PartsListChunk(chunk.phase_id, tuple(piece))))

    @property
    def project_deleted(self) -> bool:
        return self.result.deleted_at is not None

    def run_chunk(self, chunk: PartsListChunk, session: LogikalSession, queue: TaskQueue) -> None:
        target = _project_target(self.project, chunk.phase_id, for_elevations=True)
        for index, elevation_id in enumerate(chunk.elevation_ids):
            if self.project_deleted:
                return  # marked deleted by a projects sync meanwhile: nothing more is written
            elevation = self.elevations[elevation_id]
            if route(session.cursor, target, sibling_elevations=self.pool.sibling_elevations) is None:
                # Stuck in another elevation: the rest needs other sessions.
                self._requeue(chunk, index, queue)
                return
            selected, error = self._select(session, target, elevation)
            if selected is _Selected.GONE:
                self._gone(elevation)
                continue
            if selected is _Selected.SIBLING_REFUSED:
                # Refused siblings, or (a 409) this elevation is locked: a select from phase
                # state, in the session that takes the requeued rest, tells which.
                assert error is not None
                self.pool.suspect_sibling_refusal(elevation_id, error.status)
                self._requeue(chunk, index, queue)
                return
            if selected is _Selected.LOCKED:
                assert error is not None
                self.pool.settle_siblings(elevation_id, selectable_from_phase=False)
                self._failed(elevation, f"select refused (locked or in use): {error.server_message}")
                continue
            if selected is _Selected.FROM_PHASE:
                self.pool.settle_siblings(elevation_id, selectable_from_phase=True)
            else:
                self.pool.note_sibling_select()
            try:
                content = session.parts_list()
            except LogikalWrongStateError:
                raise
            except (LogikalApiError, LogikalResponseError) as error:
                self._failed(elevation, str(error))
                continue
            self._store(elevation, content)

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
        with self._lock:
            changes = self._write(lambda conn: write_parts_list(conn, elevation, content, parsed, self.now))
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
        message = f"elevation {elevation.name!r} ({elevation.id}): {reason}"
        with self._lock:
            changes = self._write(lambda conn: record_fetch_failure(conn, elevation, reason, self.now))
            if changes is None:
                return
            self.result.parts_lists.add_rows(changes)
            self.result.parts_lists_failed += 1
            self.result.failures.append(message)
        log.warning(f"LogiKal parts list not fetched for {message}; the next sync retries it")

    def _gone(self, elevation: ElevationRecord) -> None:
        with self._lock:
            changes = self._write(lambda conn: mark_elevation_gone(conn, elevation.id, self.now))
            if changes is not None:
                self.result.elevations.add_rows(changes)


def _sessions_to_prewarm(pool: SessionPool, project: StoredProject, pending: int, refetch: bool) -> int:
    """Logins worth starting before the listing shows the work: only when work is certain."""
    if project.contents_synced_at is None or refetch:
        return pool.size
    per_session = pool.costs.new_phase_session / pool.costs.per_parts_list
    return min(pool.size, int(pending // per_session))


def sync_project_contents(
    pool: SessionPool,
    engine: sa.Engine,
    project_id: str,
    *,
    include: Collection[str] = EVERYTHING,
    refetch_parts_lists: bool = False,
) -> ProjectContentsResult:
    """Sync one project's phases, elevations and parts lists (those in `include`).

    A project marked deleted, or that its directory no longer lists, is not an
    error: the result says why nothing was synced (`not_synced_because`).
    """
    started, now = time.monotonic(), utc_now()
    include = frozenset(include)
    if unknown := include - EVERYTHING:
        raise ValueError(f"unknown parts of a project: {sorted(unknown)}")
    with engine.connect() as conn:
        project = load_project(conn, project_id)
        stored = stored_parts_lists(conn, project_id) if PARTS_LISTS in include else {}
        pending = pending_parts_lists(conn, project_id) if PARTS_LISTS in include else 0
        refusal = load_sibling_refusal(conn)
    if project is None:
        raise UnknownProjectError(
            f"LogiKal project {project_id!r} is not in the warehouse: check the id, or materialize "
            "logikal/projects to discover new projects"
        )
    result = ProjectContentsResult(project_id=project.id, project_name=project.name)
    result.parts_lists.mode = FULL_REFRESH if refetch_parts_lists else INCREMENTAL
    if project.deleted_at is not None:
        result.deleted_at = project.deleted_at
        log.info(result.not_synced_because)
        return _finish(result, pool, started)
    if refusal is not None and now - refusal.since < SIBLING_REFUSAL_TRUSTED_FOR:
        pool.assume_siblings_refused(refusal.status, refusal.since)
    try:
        _sync(pool, engine, project, include, stored, pending, refetch_parts_lists, result, now)
    except BaseException:
        _count_failure(engine, project.id)
        raise
    finally:
        if pool.refusal_learned is not None:
            with write_transaction(engine) as conn:
                save_sibling_refusal(conn, pool.refusal_learned, utc_now())
    if result.gone_at_source or result.parts_lists_failed:
        count = _count_failure(engine, project.id)
        log.warning(
            f"LogiKal project {project.name!r} ({project.id}) not fully synced ({count} time(s) in a row): "
            + (result.not_synced_because or f"{result.parts_lists_failed} parts list(s) left unfetched")
        )
    elif result.not_synced_because:
        log.info(result.not_synced_because)
    return _finish(result, pool, started)


def _count_failure(engine: sa.Engine, project_id: str) -> int:
    """One more failed sync in a row (the sensor's backoff); never hides the run's own error."""
    try:
        with write_transaction(engine) as conn:
            return record_failure(conn, project_id, utc_now())
    except Exception as error:  # noqa: BLE001 - the warehouse may be what failed
        log.warning(f"could not record the failed sync of LogiKal project {project_id}: {error}")
        return 0


def _finish(result: ProjectContentsResult, pool: SessionPool, started: float) -> ProjectContentsResult:
    result.sibling_elevation_select = pool.describe_siblings()
    result.phases.pages = pool.stats.listings("/phases")
    result.elevations.pages = pool.stats.listings("/elevations")
    result.parts_lists.pages = pool.stats.listings("/elevations/selected/parts-list")
    for report in result.reports.values():
        report.started = started  # the walk's time, from before the project was loaded
        report.finish(pool.stats)
    result.client = pool.stats.snapshot()
    return result


def _sync(
    pool: SessionPool,
    engine: sa.Engine,
    project: StoredProject,
    include: frozenset[str],
    stored: Mapping[str, StoredPartsList],
    pending: int,
    refetch: bool,
    result: ProjectContentsResult,
    now: datetime,
) -> None:
    if PARTS_LISTS in include:
        pool.prewarm(_sessions_to_prewarm(pool, project, pending, refetch), _project_target(project))
    session = pool.acquire(_project_target(project))
    try:
        listing = list_project(session, pool, project, with_elevations=bool(include - {PHASES}))
    finally:
        pool.release(session)
    if listing is None:
        result.gone_at_source = True
        return
    result.phases.read = len(listing.phases)
    result.elevations.read = sum(map(len, listing.elevations.values()))

    def write(conn: sa.Connection) -> None:
        changes = write_listing(
            conn,
            project.id,
            listing.phases,
            listing.elevations,
            now,
            include_phases=PHASES in include,
            include_elevations=ELEVATIONS in include,
        )
        result.phases.add_rows(changes.phases)
        result.elevations.add_rows(changes.elevations)

    written, deleted_at = write_if_live(engine, project.id, write)
    if not written:
        result.deleted_at = deleted_at or now
        return

    if PARTS_LISTS in include:
        _fetch_parts_lists(pool, engine, project, listing, stored, refetch, result, now)
    if include == EVERYTHING and result.deleted_at is None and not result.parts_lists_failed:

        def synced(conn: sa.Connection) -> None:
            mark_contents_synced(conn, project.id, project.changed_at, now)
            clear_failures(conn, project.id)  # a complete sync ends the backoff

        written, deleted_at = write_if_live(engine, project.id, synced)
        if not written:
            result.deleted_at = deleted_at or now


def _fetch_parts_lists(
    pool: SessionPool,
    engine: sa.Engine,
    project: StoredProject,
    listing: ProjectListing,
    stored: Mapping[str, StoredPartsList],
    refetch: bool,
    result: ProjectContentsResult,
    now: datetime,
) -> None:
    work: dict[str, Sequence[str]] = {}
    by_id: dict[str, ElevationRecord] = {}
    for phase_id, elevations in listing.elevations.items():
        due = [e for e in elevations if needs_parts_list(e, stored.get(e.id), refetch=refetch)]
        result.parts_lists_skipped += len(elevations) - len(due)
        if due:
            work[phase_id] = [e.id for e in due]
            by_id.update((e.id, e) for e in due)
    if not work:
        return
    fetcher = _PartsListFetcher(pool, engine, project, by_id, result, now)
    chunks = chunk_parts_lists(
        work,
        pool_size=pool.size,
        ready_sessions=pool.ready_or_warming,
        sibling_elevations=pool.sibling_elevations,
        costs=pool.costs,
    )
    run_tasks(pool, [fetcher.task(chunk) for chunk in chunks])

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
session has been logged out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.clock import utc_now
from logikal_square_sync.logikal.client import LogikalSession
from logikal_square_sync.logikal.errors import (
    LogikalApiError,
    LogikalConflictError,
    LogikalError,
    LogikalNotFoundError,
    LogikalResponseError,
    LogikalWrongStateError,
)
from logikal_square_sync.logikal.navigation import State, Target, route
from logikal_square_sync.logikal.parts_list import parse_parts_list
from logikal_square_sync.logikal.planner import PartsListChunk, chunk_parts_lists
from logikal_square_sync.logikal.pool import SessionPool
from logikal_square_sync.logikal.records import ElevationRecord, PhaseRecord
from logikal_square_sync.logikal.runner import Task, TaskQueue, run_tasks
from logikal_square_sync.logikal.store import (
    Changes,
    StoredPartsList,
    StoredProject,
    load_project,
    mark_contents_synced,
    mark_elevation_gone,
    pending_parts_lists,
    record_fetch_failure,
    stored_parts_lists,
    write_listing,
    write_parts_list,
)

log = logging.getLogger(__name__)

PHASES, ELEVATIONS, PARTS_LISTS = "phases", "elevations", "parts_lists"
EVERYTHING = frozenset({PHASES, ELEVATIONS, PARTS_LISTS})


class UnknownProjectError(LogikalError):
    """The project is not (or no longer) in the warehouse's project list."""


class ProjectGoneError(LogikalError):
    """The project's directory no longer holds it at the source."""


@dataclass
class ProjectListing:
    phases: list[PhaseRecord]
    elevations: dict[str, list[ElevationRecord]]  # by phase id, in the source's order


@dataclass
class ProjectContentsResult:
    project_id: str
    project_name: str
    phases: Changes = field(default_factory=Changes)
    elevations: Changes = field(default_factory=Changes)
    parts_lists_fetched: int = 0
    parts_lists_skipped: int = 0
    parts_lists_failed: int = 0
    parse_status: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    client: dict[str, Any] = field(default_factory=dict)


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
) -> ProjectListing:
    """Select the project, list its phases and (optionally) each phase's elevations, in one session."""
    try:
        session.goto(_project_target(project), sibling_elevations=pool.sibling_elevations)
    except LogikalNotFoundError as error:
        raise ProjectGoneError(
            f"LogiKal project {project.name!r} ({project.id}) is no longer in directory "
            f"'{project.directory_path}': deleted or moved at the source; the next logikal/projects "
            "run records which"
        ) from error
    phases = session.list_phases()
    if not with_elevations:
        return ProjectListing(phases, {})
    listed: list[PhaseRecord] = []
    elevations: dict[str, list[ElevationRecord]] = {}
    for phase in phases:
        try:
            session.goto(_project_target(project, phase.id), sibling_elevations=pool.sibling_elevations)
        except LogikalNotFoundError:
            continue  # deleted since GET /phases: not part of the project any more
        elevations[phase.id] = session.list_elevations()
        listed.append(phase)
    return ProjectListing(listed, elevations)


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
        logger: Any,
    ) -> None:
        self.pool, self.engine, self.project = pool, engine, project
        self.elevations, self.result, self.now, self.log = elevations, result, now, logger
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

    def run_chunk(self, chunk: PartsListChunk, session: LogikalSession, queue: TaskQueue) -> None:
        target = _project_target(self.project, chunk.phase_id, for_elevations=True)
        for index, elevation_id in enumerate(chunk.elevation_ids):
            elevation = self.elevations[elevation_id]
            if route(session.cursor, target, sibling_elevations=self.pool.sibling_elevations) is None:
                # Stuck in another elevation: the rest needs other sessions.
                self._requeue(chunk, index, queue)
                return
            session.goto(target, sibling_elevations=self.pool.sibling_elevations)
            from_sibling = session.cursor.state is State.ELEVATION
            try:
                session.select_elevation(elevation_id)
            except LogikalNotFoundError:
                self._gone(elevation)
                continue
            except LogikalConflictError as error:
                if from_sibling:
                    # Either the server refuses sibling selects or this elevation is locked;
                    # a select from phase state (in a fresh session) tells which.
                    self.pool.suspect_sibling_refusal(elevation_id)
                    self._requeue(chunk, index, queue)
                    return
                self.pool.settle_siblings(elevation_id, selectable_from_phase=False)
                self._failed(elevation, f"select refused (locked or in use): {error.server_message}")
                continue
            if not from_sibling:
                self.pool.settle_siblings(elevation_id, selectable_from_phase=True)
            try:
                content = session.parts_list()
            except LogikalWrongStateError:
                raise
            except (LogikalApiError, LogikalResponseError) as error:
                self._failed(elevation, str(error))
                continue
            self._store(elevation, content)

    def _store(self, elevation: ElevationRecord, content: bytes) -> None:
        parsed = parse_parts_list(content, elevation.name)
        with self._lock, self.engine.begin() as conn:
            write_parts_list(conn, elevation, content, parsed, self.now)
            self.result.parts_lists_fetched += 1
            self.result.parse_status[parsed.parse_status] += 1
        if parsed.parse_error:
            self.log.warning(
                f"LogiKal parts list of elevation {elevation.name!r} ({elevation.id}): "
                f"{parsed.parse_status}: {parsed.parse_error}"
            )

    def _failed(self, elevation: ElevationRecord, reason: str) -> None:
        message = f"elevation {elevation.name!r} ({elevation.id}): {reason}"
        with self._lock, self.engine.begin() as conn:
            record_fetch_failure(conn, elevation, reason, self.now)
            self.result.parts_lists_failed += 1
            self.result.failures.append(message)
        self.log.warning(f"LogiKal parts list not fetched for {message}; the next sync retries it")

    def _gone(self, elevation: ElevationRecord) -> None:
        with self._lock, self.engine.begin() as conn:
            mark_elevation_gone(conn, elevation.id, self.now)
            self.result.elevations.deleted += 1


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
    logger: Any = log,
) -> ProjectContentsResult:
    """Sync one project's phases, elevations and parts lists (those in `include`)."""
    started, now = time.monotonic(), utc_now()
    include = frozenset(include)
    if unknown := include - EVERYTHING:
        raise ValueError(f"unknown parts of a project: {sorted(unknown)}")
    with engine.connect() as conn:
        project = load_project(conn, project_id)
        stored = stored_parts_lists(conn, project_id) if PARTS_LISTS in include else {}
        pending = pending_parts_lists(conn, project_id) if PARTS_LISTS in include else 0
    if project is None:
        raise UnknownProjectError(
            f"LogiKal project {project_id!r} is not in the warehouse: check the id, or materialize "
            "logikal/projects to discover new projects"
        )
    if project.deleted_at is not None:
        raise UnknownProjectError(
            f"LogiKal project {project.name!r} ({project_id}) was deleted at the source "
            f"(noticed {project.deleted_at:%Y-%m-%d %H:%M} UTC); its synced data stays in the warehouse"
        )
    result = ProjectContentsResult(project_id=project.id, project_name=project.name)

    if PARTS_LISTS in include:
        pool.prewarm(
            _sessions_to_prewarm(pool, project, pending, refetch_parts_lists), _project_target(project)
        )
    session = pool.acquire(_project_target(project))
    try:
        listing = list_project(session, pool, project, with_elevations=bool(include - {PHASES}))
    finally:
        pool.release(session)

    with engine.begin() as conn:
        changes = write_listing(
            conn,
            project.id,
            listing.phases,
            listing.elevations,
            now,
            include_phases=PHASES in include,
            include_elevations=ELEVATIONS in include,
        )
    result.phases, result.elevations = changes.phases, changes.elevations

    if PARTS_LISTS in include:
        _fetch_parts_lists(pool, engine, project, listing, stored, refetch_parts_lists, result, now, logger)
    if include == EVERYTHING:
        with engine.begin() as conn:
            mark_contents_synced(conn, project.id, project.changed_at, now)
    result.duration_seconds = time.monotonic() - started
    result.client = pool.stats.snapshot()
    return result


def _fetch_parts_lists(
    pool: SessionPool,
    engine: sa.Engine,
    project: StoredProject,
    listing: ProjectListing,
    stored: Mapping[str, StoredPartsList],
    refetch: bool,
    result: ProjectContentsResult,
    now: datetime,
    logger: Any,
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
    fetcher = _PartsListFetcher(pool, engine, project, by_id, result, now, logger)
    chunks = chunk_parts_lists(
        work,
        pool_size=pool.size,
        ready_sessions=pool.ready_or_warming,
        sibling_elevations=pool.sibling_elevations,
        costs=pool.costs,
    )
    run_tasks(pool, [fetcher.task(chunk) for chunk in chunks])

"""One project's walk on the session pool: its phases listed side by side, parts lists from a queue per phase.

1. One session selects the project and lists its phases (`list_phases`). A
   phase or elevation listing that lacks live rows is listed again in a fresh
   session first (`listing_confirmation`).
2. Each phase is a listing task (select it, `GET /elevations`), ahead of every
   parts list in the runner's queue, so the sessions that log in beside the
   first one list a phase each instead of waiting for one session to list them
   all.
3. A session that has listed its phase starts on that phase's parts lists at
   once, provided every listing has a session of its own by then (with sibling
   selects, a session idle or logging in counts): the listing is then at most
   a login and one listing away.
4. One writer thread writes: first the listing, in one transaction, when its
   last phase is in (`write_listing` marks what vanished, within the deletion
   limit), then each parts list
   (parsed, stored, or recorded as failed or gone) in the order the sessions
   hand them over. So nothing of the parts lists is written before the listing
   (a listing written after an elevation was marked gone would undo that), the
   few files fetched before it wait in a short queue, and no session waits for
   the warehouse between two parts lists.
5. Once the last phase is listed, `planner.place_joiners` spreads the pool
   over the phases with parts lists left, the longest first: sessions already
   logged in join wherever they shorten a phase, a new login only where it
   saves more than a login. A session that doubles up a phase stands by in
   phase state and picks the phase that lags late (`planner.late_join`). The
   sessions on a phase take its parts lists one at a time from a shared queue,
   so a slow parts list (1–3 s) holds up no other session. Without sibling
   selects a login fetches one parts list: each is a task of its own, and a
   session that has listed a phase takes one of them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from queue import Queue

import sqlalchemy as sa

from logikal_square_sync.common.progress import Progress
from logikal_square_sync.logikal.engine.client.errors import LogikalConflictError, LogikalNotFoundError
from logikal_square_sync.logikal.engine.client.navigation import Target, route
from logikal_square_sync.logikal.engine.client.planner import Joiner, late_join, place_joiners
from logikal_square_sync.logikal.engine.client.records import ElevationRecord, PhaseRecord
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.store.contents import (
    StoredListing,
    StoredPartsList,
    live_listing,
    write_if_live,
    write_listing,
)
from logikal_square_sync.logikal.engine.store.tree import StoredProject
from logikal_square_sync.logikal.engine.walk.deletion_limit import default_limit
from logikal_square_sync.logikal.engine.walk.listing_confirmation import (
    check_listing_deletions,
    elevations_confirmed,
    lacks,
    phases_confirmed,
)
from logikal_square_sync.logikal.engine.walk.not_found_confirmation import (
    phase_listed,
    project_listed,
    reach_after_404,
)
from logikal_square_sync.logikal.engine.walk.parts_list_fetch import PartsListFetcher, needs_parts_list
from logikal_square_sync.logikal.engine.walk.result import ProjectContentsResult
from logikal_square_sync.logikal.engine.walk.task_runner import Task, TaskQueue, run_tasks
from logikal_square_sync.policies import DeletionLimit, policies

log = logging.getLogger(__name__)

# Listings run before parts lists: the listing must be written before any parts list is.
_LISTING, _PARTS_LISTS = 0, 1
# How often a session standing by for the phase that lags looks again (a parts list takes 1–3 s).
_STAND_BY_SECONDS = 0.25


class _ProjectGone(Exception):
    """Fresh listings confirm that the project's directory no longer holds it."""


def project_target(
    project: StoredProject, phase_id: str | None = None, *, for_elevations: bool = False
) -> Target:
    return Target(project.directory_path, project.id, phase_id, for_elevations=for_elevations)


def list_phases(
    session: LogikalSession, pool: SessionPool, project: StoredProject, live: StoredListing
) -> list[PhaseRecord] | None:
    """Select the project and list its phases; None when fresh listings confirm it left its directory.

    A listing that lacks a phase `live` holds is listed again in a fresh session (`listing_confirmation`).
    """
    sibling = pool.sibling_elevations
    target = project_target(project)
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
    if missing := lacks(phases, live.phases):
        return phases_confirmed(session, project, phases, missing)
    return phases


def _list_elevations(
    session: LogikalSession,
    pool: SessionPool,
    project: StoredProject,
    phase: PhaseRecord,
    live: Collection[str],
) -> list[ElevationRecord] | None:
    """Select the phase and list its elevations; None when the phase is confirmed gone.

    A listing that lacks an elevation of `live` is listed again in a fresh session (`listing_confirmation`).
    """
    sibling = pool.sibling_elevations
    target = project_target(project, phase.id)
    try:
        session.goto(target, sibling_elevations=sibling)
    except (LogikalNotFoundError, LogikalConflictError):
        # 409: the project or phase no longer exists under this session (deleted meanwhile).
        if not reach_after_404(
            session,
            listed=lambda s: phase_listed(s, project.directory_path, project.id, phase.id),
            reach=lambda s: s.goto(target, sibling_elevations=sibling),
            what=f"phase {phase.name!r} ({phase.id}) of LogiKal project {project.name!r} ({project.id})",
        ):
            if session.cursor.project_id != project.id:
                raise _ProjectGone from None  # the walk did not even find the project
            return None  # deleted since GET /phases: not part of the project any more
    elevations = session.list_elevations()
    if missing := lacks(elevations, live):
        confirmed = elevations_confirmed(session, project, phase, elevations, missing)
        if confirmed is None and session.cursor.project_id != project.id:
            raise _ProjectGone
        return confirmed
    return elevations


@dataclass
class _PhaseWork:
    """A phase's parts lists still to fetch, and the sessions on them."""

    due: deque[str] = field(default_factory=deque)
    working: int = 0  # sessions fetching from `due` now
    queued: int = 0  # tasks for it waiting in the runner's queue
    in_flight: int = 0  # parts lists being fetched now


@dataclass(frozen=True)
class _Assignment:
    """What a session that has just listed a phase fetches next: draws from the phase's queue, or one
    parts list reserved for it (no sibling selects)."""

    phase_id: str
    reserved: str | None = None


class ProjectWalk:
    """Lists a project's phases and elevations on the pool, writes the listing, fetches its parts lists."""

    def __init__(
        self,
        pool: SessionPool,
        engine: sa.Engine,
        project: StoredProject,
        phases: Sequence[PhaseRecord],
        *,
        stored: Mapping[str, StoredPartsList],
        refetch: bool,
        include_phases: bool,
        include_elevations: bool,
        fetch_parts_lists: bool,
        result: ProjectContentsResult,
        now: datetime,
        live: StoredListing,
        allow_mass_deletion: bool = False,
        deletion_limit: DeletionLimit | None = None,
    ) -> None:
        self.pool, self.engine, self.project, self.phases = pool, engine, project, list(phases)
        self.live, self.allow_mass_deletion = live, allow_mass_deletion
        self.deletion_limit = deletion_limit or default_limit()
        self.stored, self.refetch, self.result, self.now = stored, refetch, result, now
        self.include_phases, self.include_elevations = include_phases, include_elevations
        self.fetch_parts_lists = fetch_parts_lists
        self.fetcher = PartsListFetcher(pool, engine, project, result, now, self._after_listing)
        self.project_gone = False
        self._lock = threading.Lock()
        self._claimed: set[str] = set()  # phases whose listing has a session
        self._listed: dict[str, list[ElevationRecord]] = {}
        self._gone_phases: set[str] = set()
        self._work: dict[str, _PhaseWork] = {}
        self._elevations: dict[str, ElevationRecord] = {}
        self._complete = False  # every phase listed (or gone)
        # One thread writes, in order: the listing once it is complete, then each parts list's
        # row as its session hands it over (bounded: a session waits rather than pile files up).
        self._listing: tuple[list[PhaseRecord], dict[str, list[ElevationRecord]]] | None = None
        self._listing_ready = threading.Event()
        self._writes: Queue[Callable[[], None] | None] = Queue(maxsize=2 * pool.size)
        self._writer = threading.Thread(target=self._write_loop, name="logikal-writer", daemon=True)
        self._write_error: BaseException | None = None
        self._stopped = False
        # Elevations done: their parts lists written, failed or found gone, out of those due.
        self._done = 0
        what = f"LogiKal project {project.name!r} ({project.id})"
        self._progress = Progress(log, what, policies().progress, unit="elevations done", noun="parts lists")
        self._standing_by = threading.Event()  # set by `_stop`: a session standing by stops waiting

    def run(self) -> None:
        """Walk the project; `project_gone` or `result.deleted_at` say when it stopped short."""
        self._writer.start()
        try:
            if self.include_elevations or self.fetch_parts_lists:
                run_tasks(self.pool, [self._listing_task(phase) for phase in self.phases])
            if not self._complete and not self._stopped:
                self._listing_complete(None, free=False)  # nothing to list per phase (or no phase at all)
        finally:
            self._listing_ready.set()  # a walk that stopped short has no listing to wait for
            self._writes.put(None)
            self._writer.join()
        if self._write_error is not None:
            raise self._write_error
        left = sum(len(work.due) for work in self._work.values())
        if left and not (self._stopped or self.fetcher.project_deleted):
            # Never silently: the project would count as synced with parts lists missing.
            raise RuntimeError(f"LogiKal project {self.project.id}: {left} parts list(s) never handed out")

    # -- listing ---------------------------------------------------------------

    def _listing_task(self, phase: PhaseRecord) -> Task:
        return Task(
            target=project_target(self.project, phase.id),
            # No cost: a listing never pays for a login of its own (an unchanged project is
            # listed by one session); the work it reveals is planned once it is known.
            cost=0.0,
            run=lambda session, queue: self._list_phase(phase, session, queue),
            label=f"list phase {phase.id}",
            priority=_LISTING,
            wanted=lambda: not self._stopped,
        )

    def _list_phase(self, phase: PhaseRecord, session: LogikalSession, queue: TaskQueue) -> None:
        with self._lock:
            self._claimed.add(phase.id)
        try:
            elevations = _list_elevations(
                session, self.pool, self.project, phase, self.live.elevations_in(phase.id)
            )
        except _ProjectGone:
            self.project_gone = True
            self._stop()
            return
        except BaseException:
            self._stop()  # nothing is written of a listing that failed
            raise
        coming = self._sessions_coming() if elevations is not None else 0
        here: _Assignment | None = None
        with self._lock:
            if elevations is None:
                self._gone_phases.add(phase.id)
            else:
                self._listed[phase.id] = elevations
                due = [e for e in elevations if self._due(e)] if self.fetch_parts_lists else []
                self._elevations.update((e.id, e) for e in due)
                work = self._work[phase.id] = _PhaseWork(deque(e.id for e in due))
            last = len(self._listed) + len(self._gone_phases) == len(self.phases)
            # Parts lists only once every listing has a session: the listing is then close. The
            # last one leaves the choice to the plan, which knows every phase's work by then.
            if elevations is not None and not last and self._listings_covered(coming):
                work = self._work[phase.id]
                if work.due and not self._stopped:
                    work.working += 1
                    reserved = work.due.popleft() if self.pool.siblings_refused else None
                    here = _Assignment(phase.id, reserved)
        if last:
            here = self._listing_complete(queue, free=True)
        if here is not None:
            self._fetch_phase(here, session, queue)

    def _sessions_coming(self) -> int:
        """Sessions not lent out that reach the project without a login of their own (idle or logging in)."""
        return sum(joiner.logged_in for joiner in self.pool.availability(project_target(self.project)))

    def _listings_covered(self, coming: int) -> bool:
        """Whether every phase not yet being listed has a session for it (the caller holds the lock).

        With sibling selects, sessions already logged in or logging in count: the
        first session to list a phase then starts on its parts lists at once
        instead of listing the others while the rest log in, so the phase that
        ends up with one session to itself starts as early as it can.
        """
        unclaimed = len(self.phases) - len(self._claimed)
        return unclaimed == 0 or (self.pool.sibling_elevations and unclaimed <= coming)

    def _due(self, elevation: ElevationRecord) -> bool:
        return needs_parts_list(elevation, self.stored.get(elevation.id), refetch=self.refetch)

    def _listing_complete(self, queue: TaskQueue | None, *, free: bool) -> _Assignment | None:
        """The last phase is listed: hand the listing to the writer and plan the parts lists.

        The sessions start on the parts lists while the listing is written (their
        writes queue up behind it). `free`: the calling session stands in a phase,
        committed to none; the plan may give it work, which it returns.
        """
        with self._lock:
            if self._stopped:
                return None
            self._complete = True
            phases = [phase for phase in self.phases if phase.id not in self._gone_phases]
            listed: dict[str, list[ElevationRecord]] = {
                phase.id: self._listed[phase.id] for phase in phases if phase.id in self._listed
            }
            self._listing = phases, listed
            self._progress.total = len(self._elevations)
        log.info(
            f"LogiKal project {self.project.name!r} ({self.project.id}): {len(phases)} phase(s), "
            f"{sum(map(len, listed.values()))} elevation(s) listed, {len(self._elevations)} parts list(s) due"
        )
        self._listing_ready.set()
        if queue is None or not self._work:
            return None
        return self._plan(queue, free=free)

    def _write_loop(self) -> None:
        """The writer thread: the listing first, then the parts lists' writes in the order they came."""
        self._listing_ready.wait()
        listing = self._listing
        if listing is not None and not self._stopped:
            self._guarded(lambda: self._write_listing(*listing))
        while (action := self._writes.get()) is not None:
            if not self._stopped:  # after a stop, only drained: a session may wait to hand one over
                self._guarded(action)
                self._done += 1
                self._progress.note(self._done, self.result.parts_lists_fetched)

    def _guarded(self, write: Callable[[], None]) -> None:
        try:
            write()
        except BaseException as error:  # noqa: BLE001 - raised by `run` in the caller's thread
            self._write_error = error
            self._stop()

    def _write_listing(self, phases: list[PhaseRecord], listed: dict[str, list[ElevationRecord]]) -> None:
        def write(conn: sa.Connection) -> None:
            if self.include_phases or self.include_elevations:
                # What is live now, in this transaction: the same rows `write_listing` would mark.
                check_listing_deletions(
                    live_listing(conn, self.project.id),
                    phases,
                    listed,
                    project=self.project,
                    include_elevations=self.include_elevations,
                    limit=self.deletion_limit,
                    allow_mass_deletion=self.allow_mass_deletion,
                )
            changes = write_listing(
                conn,
                self.project.id,
                phases,
                listed,
                self.now,
                include_phases=self.include_phases,
                include_elevations=self.include_elevations,
            )
            self.result.phases.add_rows(changes.phases)
            self.result.elevations.add_rows(changes.elevations)

        self.result.phases.read = len(phases)
        self.result.elevations.read = sum(map(len, listed.values()))
        written, deleted_at = write_if_live(self.engine, self.project.id, write)
        if not written:
            self.result.deleted_at = deleted_at or self.now
            self._stop()
            return
        if self.fetch_parts_lists:
            with self._lock:
                self.result.parts_lists_skipped += sum(map(len, listed.values())) - len(self._elevations)

    # -- parts lists -------------------------------------------------------------

    def _plan(self, queue: TaskQueue, *, free: bool) -> _Assignment | None:
        costs = self.pool.costs
        if self.pool.siblings_refused:
            with self._lock:
                single, singles = self._one_task_per_parts_list(free=free)
            for task in singles:
                queue.put(task)
            return single
        with self._lock:
            remaining = {phase: len(work.due) for phase, work in self._work.items()}
            working = {phase: work.working + work.queued for phase, work in self._work.items()}
            in_flight = {phase: work.in_flight for phase, work in self._work.items()}
            queued = sum(work.queued for work in self._work.values())
        # Tasks already queued take the readiest sessions; every joiner still has to select a phase.
        joiners = [
            Joiner(joiner.delay + costs.select_phase, joiner.logged_in)
            for joiner in self.pool.availability(project_target(self.project))[queued:]
        ]
        if free:
            joiners.insert(0, Joiner(costs.select_phase))
        placement = place_joiners(remaining, working, joiners, in_flight=in_flight, costs=costs)
        plan = placement.counts()
        here: _Assignment | None = None
        tasks: list[Task] = []
        with self._lock:
            # The free session is the first joiner: it goes where the plan put it.
            if free and (phase := placement.joiners[0]) is not None:
                self._work[phase].working += 1
                here = _Assignment(phase)
            for phase, count in plan.items():
                share = remaining[phase] * costs.per_parts_list / (working[phase] + count)
                staffed = working[phase] > 0
                if here is not None and here.phase_id == phase:
                    count, staffed = count - 1, True
                # A phase's own session is bound to it; a session that doubles one up picks the
                # phase late, by the parts lists fetched meanwhile (`planner.late_join`).
                own = 0 if staffed else min(count, 1)
                tasks += [self._fetch_task(phase, cost=share) for _ in range(own)]
                tasks += [self._joining_task(cost=share) for _ in range(count - own)]
                self._work[phase].queued += own
        for task in tasks:
            queue.put(task)
        return here

    def _one_task_per_parts_list(self, *, free: bool) -> tuple[_Assignment | None, list[Task]]:
        # Called with the lock held. Each parts list needs a login of its own (a session in
        # phase state): one task each; a free session standing in a phase takes one of them.
        here: _Assignment | None = None
        if free:
            phase = max(self._work, key=lambda p: len(self._work[p].due))
            if self._work[phase].due:
                self._work[phase].working += 1
                here = _Assignment(phase, self._work[phase].due.popleft())
        tasks = [self._fetch_task(phase, reserved=e) for phase, work in self._work.items() for e in work.due]
        for work in self._work.values():
            work.queued += len(work.due)
            work.due.clear()
        return here, tasks

    def _fetch_task(self, phase_id: str, *, reserved: str | None = None, cost: float | None = None) -> Task:
        """A session for the phase's parts lists: the one `reserved`, or as many as it can draw."""
        work = self._work[phase_id]

        def wanted() -> bool:
            with self._lock:
                if self._stopped or (reserved is None and not work.due):
                    work.queued -= 1
                    return False
                return True

        def run(session: LogikalSession, queue: TaskQueue) -> None:
            with self._lock:
                work.queued -= 1
                work.working += 1
            self._fetch_phase(_Assignment(phase_id, reserved), session, queue)

        return Task(
            target=project_target(self.project, phase_id, for_elevations=True),
            cost=self.pool.costs.per_parts_list if cost is None else cost,
            run=run,
            label=f"parts lists in phase {phase_id}",
            priority=_PARTS_LISTS,
            wanted=wanted,
        )

    def _joining_task(self, *, cost: float) -> Task:
        """A session that joins whichever phase finishes last, standing by in phase state while waiting
        still leaves time to save that phase (`planner.late_join`)."""

        def wanted() -> bool:
            with self._lock:
                return not self._stopped and any(work.due for work in self._work.values())

        def run(session: LogikalSession, queue: TaskQueue) -> None:
            while not (self._stopped or queue.stopping or self.fetcher.project_deleted):
                with self._lock:
                    remaining = {phase: len(work.due) for phase, work in self._work.items()}
                    working = {phase: work.working + work.queued for phase, work in self._work.items()}
                    in_flight = {phase: work.in_flight for phase, work in self._work.items()}
                phase, wait = late_join(
                    remaining, working, in_flight, wait=_STAND_BY_SECONDS, costs=self.pool.costs
                )
                if phase is None:
                    return
                if wait:
                    self._standing_by.wait(_STAND_BY_SECONDS)
                    continue
                with self._lock:
                    self._work[phase].working += 1
                self._fetch_phase(_Assignment(phase), session, queue)
                return

        return Task(
            target=project_target(self.project),
            cost=cost,
            run=run,
            label="parts lists of the phase that finishes last",
            priority=_PARTS_LISTS,
            wanted=wanted,
        )

    def _fetch_phase(self, assignment: _Assignment, session: LogikalSession, queue: TaskQueue) -> None:
        """Fetch the reserved parts list, or draw the phase's until none is left or the session is stuck."""
        phase_id, reserved = assignment.phase_id, assignment.reserved
        target = project_target(self.project, phase_id, for_elevations=True)
        try:
            while not (self._stopped or queue.stopping or self.fetcher.project_deleted):
                if route(session.cursor, target, sibling_elevations=self.pool.sibling_elevations) is None:
                    if reserved is not None:
                        self._put_back(phase_id, reserved)
                    return  # stuck in another elevation (no sibling selects): the rest needs other sessions
                elevation_id = reserved if reserved is not None else self._draw(phase_id)
                if elevation_id is None:
                    return
                with self._lock:
                    self._work[phase_id].in_flight += 1
                try:
                    fetched = self.fetcher.fetch(session, target, self._elevations[elevation_id])
                finally:
                    with self._lock:
                        self._work[phase_id].in_flight -= 1
                if not fetched:
                    self._put_back(phase_id, elevation_id)
                    return
                if reserved is not None:
                    return
        finally:
            self._leave(phase_id, queue)

    def _draw(self, phase_id: str) -> str | None:
        with self._lock:
            due = self._work[phase_id].due
            return due.popleft() if due else None

    def _put_back(self, phase_id: str, elevation_id: str) -> None:
        with self._lock:
            self._work[phase_id].due.appendleft(elevation_id)

    def _leave(self, phase_id: str, queue: TaskQueue) -> None:
        """A session is done with the phase; what is left of it goes to other sessions."""
        with self._lock:
            work = self._work[phase_id]
            work.working -= 1
            if not work.due or self._stopped:
                return
            if self.pool.siblings_refused:
                tasks = [self._fetch_task(phase_id, reserved=e) for e in work.due]
                work.due.clear()
            elif work.working == 0 and work.queued == 0:
                # Siblings suspect (a refusal seen, not settled): the next session selects from phase state.
                tasks = [self._fetch_task(phase_id)]
            else:
                tasks = []
            work.queued += len(tasks)
        for task in tasks:
            queue.put(task)

    # -- writes -----------------------------------------------------------------------

    def _after_listing(self, write: Callable[[], None]) -> None:
        """A parts list's write, for the writer: after the listing, in order."""
        if not self._stopped:
            self._writes.put(write)

    def _stop(self) -> None:
        """Nothing more is listed, fetched or written (the project is gone or deleted, a listing failed)."""
        with self._lock:
            self._stopped = True
        self._standing_by.set()
        self._listing_ready.set()  # the writer then only drains what sessions still hand over

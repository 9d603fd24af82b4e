"""Sync of one project: its phases, elevations and parts lists, with the fewest logins.

1. One session selects the project and lists its phases; then each phase is
   selected and its elevations listed, the phases side by side on the sessions
   that logged in meanwhile (`project_walk`).
2. The listing is written in one transaction; phases and elevations the
   source no longer lists get `deleted_at`: only once a listing in a fresh
   session lacks them too, and within the deletion limit per project
   (`listing_confirmation`).
3. Parts lists are fetched only for elevations that are new or changed
   (`versionId`, `changedDate`) or whose stored copy is missing; elevations in
   the recycle bin are skipped. Elevation state cannot leave its phase, so each
   phase with work gets a session (the one that listed it, when it can), idle
   sessions join the longest phases (`planner.place_joiners`), and without
   sibling elevation selects every parts list gets its own login. Each file is
   hashed, parsed and committed as it arrives, so a crash loses only files in
   flight and the next run fetches exactly what is still missing.

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
nothing live once the project is marked deleted (`store.contents.write_if_live`), so a projects sync
that marks it deleted meanwhile never leaves live phases or elevations behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.sync_report import FULL_REFRESH, INCREMENTAL
from logikal_square_sync.logikal.engine.client.errors import LogikalError
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.store.contents import (
    StoredListing,
    StoredPartsList,
    live_listing,
    load_sibling_refusal,
    pending_parts_lists,
    save_sibling_refusal,
    stored_parts_lists,
    write_if_live,
)
from logikal_square_sync.logikal.engine.store.tree import StoredProject, load_project, mark_contents_synced
from logikal_square_sync.logikal.engine.store.writes import write_transaction
from logikal_square_sync.logikal.engine.syncs.project_failures import clear_failures, record_failure
from logikal_square_sync.logikal.engine.walk.project_walk import ProjectWalk, list_phases, project_target
from logikal_square_sync.logikal.engine.walk.result import (
    ELEVATIONS,
    EVERYTHING,
    PARTS_LISTS,
    PHASES,
    ProjectContentsResult,
)
from logikal_square_sync.policies import DeletionLimit

log = logging.getLogger(__name__)

# How long a refusal of sibling elevation selects, once learned, is trusted before a
# run tries siblings again (a server's configuration may change; a retry costs one
# refused select).
SIBLING_REFUSAL_TRUSTED_FOR = timedelta(days=7)


class UnknownProjectError(LogikalError):
    """The project is not in the warehouse's project list."""


def _sessions_to_prewarm(
    pool: SessionPool, project: StoredProject, pending: int, refetch: bool, live_elevations: int
) -> tuple[int, int | None]:
    """Sessions worth starting before the listing shows the work, and how many of them are worth a
    login (None: all): only when work is certain. A refetch takes every banked token (no login),
    but logs in only as the stored elevations' parts lists pay for a login."""
    if project.contents_synced_at is None:
        return pool.size, None
    per_session = pool.costs.new_phase_session / pool.costs.per_parts_list
    if refetch:
        return pool.size, min(pool.size, max(1, int(live_elevations // per_session)))
    return min(pool.size, int(pending // per_session)), None


def sync_project_contents(
    pool: SessionPool,
    engine: sa.Engine,
    project_id: str,
    *,
    include: Collection[str] = EVERYTHING,
    refetch_parts_lists: bool = False,
    allow_mass_deletion: bool = False,
    deletion_limit: DeletionLimit | None = None,
) -> ProjectContentsResult:
    """Sync one project's phases, elevations and parts lists (those in `include`).

    A project marked deleted, or that its directory no longer lists, is not an
    error: the result says why nothing was synced (`not_synced_because`). A
    listing that would mark more of the project deleted than `deletion_limit`
    allows raises `MassDeletionError` unless `allow_mass_deletion`.
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
        live = live_listing(conn, project_id)
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
        limits = _Limits(live, allow_mass_deletion, deletion_limit)
        _sync(pool, engine, project, include, stored, pending, refetch_parts_lists, result, now, limits)
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


@dataclass(frozen=True)
class _Limits:
    """What guards the deletions of a listing: the rows live before, and the deletion limit."""

    live: StoredListing
    allow_mass_deletion: bool
    deletion_limit: DeletionLimit | None


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
    limits: _Limits,
) -> None:
    if PARTS_LISTS in include:
        live_elevations = sum(len(elevations) for elevations in limits.live.elevations.values())
        count, logins_worth = _sessions_to_prewarm(pool, project, pending, refetch, live_elevations)
        pool.prewarm(count, project_target(project), logins_worth=logins_worth)
    session = pool.acquire(project_target(project))
    try:
        phases = list_phases(session, pool, project, limits.live)
    finally:
        pool.release(session)
    if phases is None:
        result.gone_at_source = True
        return
    walk = ProjectWalk(
        pool,
        engine,
        project,
        phases,
        stored=stored,
        refetch=refetch,
        include_phases=PHASES in include,
        include_elevations=ELEVATIONS in include,
        fetch_parts_lists=PARTS_LISTS in include,
        result=result,
        now=now,
        live=limits.live,
        allow_mass_deletion=limits.allow_mass_deletion,
        deletion_limit=limits.deletion_limit,
    )
    walk.run()
    if walk.project_gone:
        result.gone_at_source = True
        return
    if include == EVERYTHING and result.deleted_at is None and not result.parts_lists_failed:

        def synced(conn: sa.Connection) -> None:
            mark_contents_synced(conn, project.id, project.changed_at, now)
            clear_failures(conn, project.id)  # a complete sync ends the backoff

        written, deleted_at = write_if_live(engine, project.id, synced)
        if not written:
            result.deleted_at = deleted_at or now

"""Sync of the project list: `GET /projects` in every known directory.

Directories come from the warehouse (the `logikal/directories` asset keeps
them), and a session in directory state can select any of them, so one login
lists them all; more sessions join only for many directories. Each
directory's projects are written as they arrive. Projects that no directory
lists any more get `deleted_at` (with their phases and elevations) once
every directory was listed; a failed run marks nothing deleted. A directory
whose select answers 404 lists no projects only once a fresh session's listing
of its parent confirms it is gone. A live project that no listing showed is
gone only once a fresh session (a new login, walking down from the root) lists
its directory without it too: a momentarily empty or short `GET /projects`
would otherwise take the project's phases and elevations with it. A run that
would mark more projects deleted than the deletion limit allows fails instead
(`deletion_limit`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.progress import Progress
from logikal_square_sync.common.sync_report import FULL_REFRESH, SyncReport
from logikal_square_sync.logikal.engine.client.errors import LogikalError, LogikalNotFoundError
from logikal_square_sync.logikal.engine.client.navigation import Target
from logikal_square_sync.logikal.engine.client.records import ProjectRecord
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.store.tree import (
    ProjectRef,
    forget_contents_sync,
    live_directories,
    live_project_ids,
    mark_projects_deleted,
    unseen_projects,
    write_projects,
)
from logikal_square_sync.logikal.engine.store.writes import write_transaction
from logikal_square_sync.logikal.engine.walk.deletion_limit import check_deletion_limit, default_limit
from logikal_square_sync.logikal.engine.walk.not_found_confirmation import (
    directory_listed,
    directory_projects,
    reach_after_404,
)
from logikal_square_sync.logikal.engine.walk.task_runner import Task, TaskQueue, run_tasks
from logikal_square_sync.policies import DeletionLimit, policies

log = logging.getLogger(__name__)


@dataclass
class ProjectSyncResult:
    report: SyncReport
    live_project_ids: set[str]
    new_project_ids: set[str]
    vanished_project_ids: list[str]
    client: dict[str, Any] = field(default_factory=dict)  # the pool's own counters (diagnostics)


def sync_projects(
    pool: SessionPool,
    engine: sa.Engine,
    *,
    allow_mass_deletion: bool = False,
    deletion_limit: DeletionLimit | None = None,
) -> ProjectSyncResult:
    report, now = SyncReport(mode=FULL_REFRESH), utc_now()
    with engine.connect() as conn:
        directories = live_directories(conn)
        known = live_project_ids(conn)
    if not directories:
        # Listing nothing would mark every stored project deleted.
        raise LogikalError(
            "no LogiKal directories in the warehouse yet: materialize logikal/directories first"
        )
    seen: set[str] = set()
    refused: set[str] = set()  # quarantined (`store.writes.upsert_rows`): seen, so never marked deleted
    lock = threading.Lock()
    cost = pool.costs.select_directory + pool.costs.listing
    unit, total = "directories listed", len(directories)
    progress = Progress(log, "LogiKal projects", policies().progress, unit=unit, noun="projects", total=total)
    listed = [0]

    def lister(path: str):
        def run(session: LogikalSession, queue: TaskQueue) -> None:
            target = Target(path)
            try:
                session.goto(target, sibling_elevations=pool.sibling_elevations)
            except LogikalNotFoundError:
                if not reach_after_404(
                    session,
                    listed=lambda s: directory_listed(s, path),
                    reach=lambda s: s.goto(target, sibling_elevations=pool.sibling_elevations),
                    what=f"LogiKal directory '{path}'",
                ):
                    return  # gone since the last directory sync: its projects count as unseen
            projects = session.list_projects()
            with lock:
                with write_transaction(engine) as conn:
                    changes = write_projects(conn, [(project, path) for project in projects], now)
                report.add_rows(changes)
                report.rejected += len(changes.rejected)
                refused.update(changes.rejected)
                report.read += len(projects)
                seen.update(project.id for project in projects)
                listed[0] += 1
                counts = listed[0], report.read
            progress.note(*counts)

        return run

    run_tasks(
        pool, [Task(Target(path), cost, lister(path), f"list projects in '{path}'") for path in directories]
    )
    with engine.connect() as conn:
        unseen = unseen_projects(conn, seen)
    relisted = _listed_again(pool, unseen) if unseen else []
    seen.update(project.id for project, _ in relisted)
    with write_transaction(engine) as conn:
        report.add_rows(write_projects(conn, relisted, now))
        report.read += len(relisted)
        unseen = unseen_projects(conn, seen)
        check_deletion_limit(
            asset="logikal/projects",
            noun="projects",
            gone=[project.describe() for project in unseen],
            live_before=len(known),
            limit=deletion_limit or default_limit(),
            allow_mass_deletion=allow_mass_deletion,
        )
        vanished = [project.id for project in unseen]
        mark_projects_deleted(conn, vanished, now)
        forget_contents_sync(conn, seen - known)
    report.deleted += len(vanished)
    report.pages = pool.stats.listings("/projects")
    return ProjectSyncResult(
        report=report.finish(pool.stats),
        # A project whose row the warehouse refused, and holds no earlier copy of, has nothing to sync.
        live_project_ids=seen - (refused - known),
        new_project_ids=seen - refused - known,
        vanished_project_ids=vanished,
        client=pool.stats.snapshot(),
    )


def _listed_again(pool: SessionPool, unseen: list[ProjectRef]) -> list[tuple[ProjectRecord, str]]:
    """The unseen projects that a fresh session's listing of their directory still shows.

    One login per directory that lacked a live project: only when projects went missing.
    """
    directories = sorted({project.directory_path for project in unseen})
    wanted = {project.id for project in unseen}
    found: list[tuple[ProjectRecord, str]] = []
    session = pool.acquire(Target(directories[0]))
    try:
        for directory in directories:
            session.stats.add(relistings=1)
            missing = sum(project.directory_path == directory for project in unseen)
            log.info(
                f"LogiKal directory '{directory}' did not list {missing} live project(s); listing it again "
                "in a fresh session before any counts as gone"
            )
            listed = directory_projects(session, directory) or []
            found += [(project, directory) for project in listed if project.id in wanted]
    finally:
        pool.release(session)
    return found

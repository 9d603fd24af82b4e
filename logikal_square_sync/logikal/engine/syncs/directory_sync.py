"""Sync of the directory tree: one session walks it, more join only for big trees.

From directory state any directory can be selected by its full path, so a
single login lists the whole tree (select, list children, next). The walk is
written in one transaction at the end, which is also when directories that
are gone get `deleted_at`: a walk that fails half-way marks nothing deleted.
A directory whose select answers 404 counts as gone only once a fresh
session's listing of its parent confirms it (`not_found_confirmation`), and a run that would
mark more of the tree deleted than the deletion limit allows fails instead
(`deletion_limit`).

The walk is a walk of a tree: each path is listed once. A listing that names
the listed directory itself, one of its ancestors, or a path already listed
elsewhere (a cycle or a repeat at the source) would otherwise send the walk
round for ever, its queue growing. Such an entry is a malformed answer: it is
left out, named in `DirectorySyncResult.malformed` (a `MalformedRecordError`
naming the call and the path), and the rest of the tree is synced. Leaving it
out loses nothing: the path itself was listed, and is written, where it was
seen first.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.progress import Progress
from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.common.sync_report import FULL_REFRESH, SyncReport
from logikal_square_sync.logikal.engine.client.errors import LogikalNotFoundError
from logikal_square_sync.logikal.engine.client.navigation import ROOT, Target
from logikal_square_sync.logikal.engine.client.records import DirectoryRecord
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.store.tree import live_directories, write_directories
from logikal_square_sync.logikal.engine.store.writes import write_transaction
from logikal_square_sync.logikal.engine.walk.deletion_limit import check_deletion_limit, default_limit
from logikal_square_sync.logikal.engine.walk.not_found_confirmation import directory_listed, reach_after_404
from logikal_square_sync.logikal.engine.walk.task_runner import Task, TaskQueue, run_tasks
from logikal_square_sync.policies import DeletionLimit, policies

log = logging.getLogger(__name__)


@dataclass
class DirectorySyncResult:
    report: SyncReport
    client: dict[str, Any] = field(default_factory=dict)  # the pool's own counters (diagnostics)
    # Entries of listings left out because they would make the tree a cycle or repeat a path.
    malformed: list[MalformedRecordError] = field(default_factory=list)


@dataclass
class DirectoryWalk:
    """Every directory with its parent's path (None for roots), parents before children."""

    found: list[tuple[DirectoryRecord, str | None]]
    malformed: list[MalformedRecordError]


def _listing_call(path: str | None) -> str:
    return "GET /directories (the roots)" if path is None else f"GET /directories (directory '{path}')"


def _not_a_tree(child: str, listed: str | None, parents: dict[str, str | None]) -> str | None:
    """Why `child`, in the listing of `listed`, is not a new directory below it; None when it is."""
    if child == listed:
        return "names the listed directory itself: the tree would be a cycle"
    ancestor = parents.get(listed) if listed is not None else None
    while ancestor is not None:
        if child == ancestor:
            return f"names '{child}', an ancestor of the listed directory: the tree would be a cycle"
        ancestor = parents.get(ancestor)
    if child in parents:
        where = "the roots" if parents[child] is None else f"directory '{parents[child]}'"
        return f"was listed already, in {where}: a directory has one place in the tree"
    return None


def walk_directories(pool: SessionPool) -> DirectoryWalk:
    """List the tree from the roots down, each path once (see the module's docstring)."""
    found: list[tuple[DirectoryRecord, str | None]] = []
    malformed: list[MalformedRecordError] = []
    # Every path taken into the tree, with the path of the listing it was taken from.
    parents: dict[str, str | None] = {}
    gone: set[str] = set()
    lock = threading.Lock()
    cost = pool.costs.select_directory + pool.costs.listing
    # The tree is found as it is walked: no total, so no time left.
    progress = Progress(log, "LogiKal directories", policies().progress, unit="listings", noun="directories")
    listings = [0]

    def lister(path: str | None):
        def run(session: LogikalSession, queue: TaskQueue) -> None:
            target = Target(path or ROOT)
            try:
                session.goto(target, sibling_elevations=pool.sibling_elevations)
            except LogikalNotFoundError:
                # The root listing never answers 404, so `path` is a directory listed earlier.
                assert path is not None
                if not reach_after_404(
                    session,
                    listed=lambda s: directory_listed(s, path),
                    reach=lambda s: s.goto(target, sibling_elevations=pool.sibling_elevations),
                    what=f"LogiKal directory '{path}'",
                ):
                    # Removed since its parent was listed: it is simply not part of the tree.
                    with lock:
                        gone.add(path)
                    return
            children = session.list_directories()
            new: list[DirectoryRecord] = []
            with lock:
                for position, child in enumerate(children):
                    problem = _not_a_tree(child.path, path, parents)
                    if problem is not None:
                        malformed.append(
                            MalformedRecordError(
                                "LogiKal",
                                "directory",
                                child.path,
                                "path",
                                problem,
                                _listing_call(path),
                                position=position,
                            )
                        )
                        continue
                    parents[child.path] = path
                    new.append(child)
                found.extend((child, path) for child in new)
                listings[0] += 1
                counts = listings[0], len(found)
            progress.note(*counts)
            for child in new:
                queue.put(
                    Task(Target(child.path), cost, lister(child.path), f"list directory '{child.path}'")
                )

        return run

    run_tasks(pool, [Task(Target(ROOT), pool.costs.listing, lister(None), "list root directories")])
    return DirectoryWalk([(record, parent) for record, parent in found if record.path not in gone], malformed)


def sync_directories(
    pool: SessionPool,
    engine: sa.Engine,
    *,
    allow_mass_deletion: bool = False,
    deletion_limit: DeletionLimit | None = None,
) -> DirectorySyncResult:
    report, now = SyncReport(mode=FULL_REFRESH), utc_now()
    walk = walk_directories(pool)
    found = walk.found
    for error in walk.malformed:
        log.warning(f"{error}; left out of the walk, the rest of the tree is synced")
    seen = {directory.path for directory, _ in found}
    with write_transaction(engine) as conn:
        live = live_directories(conn)
        check_deletion_limit(
            asset="logikal/directories",
            noun="directories",
            gone=[f"'{path}'" for path in live if path not in seen],
            live_before=len(live),
            limit=deletion_limit or default_limit(),
            allow_mass_deletion=allow_mass_deletion,
        )
        report.add_rows(write_directories(conn, found, now))
    report.read, report.pages = len(found), pool.stats.listings("/directories")
    return DirectorySyncResult(report.finish(pool.stats), pool.stats.snapshot(), walk.malformed)

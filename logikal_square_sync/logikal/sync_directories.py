"""Sync of the directory tree: one session walks it, more join only for big trees.

From directory state any directory can be selected by its full path, so a
single login lists the whole tree (select, list children, next). The walk is
written in one transaction at the end, which is also when directories that
are gone get `deleted_at`: a walk that fails half-way marks nothing deleted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.clock import utc_now
from logikal_square_sync.logikal.client import LogikalSession
from logikal_square_sync.logikal.errors import LogikalNotFoundError
from logikal_square_sync.logikal.navigation import ROOT, Target
from logikal_square_sync.logikal.pool import SessionPool
from logikal_square_sync.logikal.records import DirectoryRecord
from logikal_square_sync.logikal.runner import Task, TaskQueue, run_tasks
from logikal_square_sync.logikal.store import Changes, write_directories


@dataclass
class DirectorySyncResult:
    directories: int
    changes: Changes
    duration_seconds: float
    client: dict[str, Any] = field(default_factory=dict)


def walk_directories(pool: SessionPool) -> list[tuple[DirectoryRecord, str | None]]:
    """Every directory with its parent's path (None for roots), parents before children."""
    found: list[tuple[DirectoryRecord, str | None]] = []
    gone: set[str] = set()
    lock = threading.Lock()
    cost = pool.costs.select_directory + pool.costs.listing

    def lister(path: str | None):
        def run(session: LogikalSession, queue: TaskQueue) -> None:
            try:
                session.goto(Target(path or ROOT), sibling_elevations=pool.sibling_elevations)
                children = session.list_directories()
            except LogikalNotFoundError:
                # Removed since its parent was listed: it is simply not part of the tree.
                with lock:
                    gone.add(path or ROOT)
                return
            with lock:
                found.extend((child, path) for child in children)
            for child in children:
                queue.put(
                    Task(Target(child.path), cost, lister(child.path), f"list directory '{child.path}'")
                )

        return run

    run_tasks(pool, [Task(Target(ROOT), pool.costs.listing, lister(None), "list root directories")])
    return [(record, parent) for record, parent in found if record.path not in gone]


def sync_directories(pool: SessionPool, engine: sa.Engine) -> DirectorySyncResult:
    started, now = time.monotonic(), utc_now()
    found = walk_directories(pool)
    with engine.begin() as conn:
        changes = write_directories(conn, found, now)
    return DirectorySyncResult(
        directories=len(found),
        changes=changes,
        duration_seconds=time.monotonic() - started,
        client=pool.stats.snapshot(),
    )

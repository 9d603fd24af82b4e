"""A project the warehouse does not know yet, looked up at LogiKal on the spot.

`logikal/projects` discovers new projects every 30 minutes; a salesperson who just created one
clicks "Force Sync" sooner. So a GUID or name the warehouse lacks is searched for at LogiKal,
through the directories (the tree as LogiKal lists it now, then each directory's projects: the
engine's own walk and listing calls), with one session that claims a slot of the LogiKal
session budget like a run's session does. The project found is written to `logikal_projects`
(the row `logikal/projects` would write), so the partition's run finds it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.interfaces.force_sync import ProjectRef
from logikal_square_sync.logikal.engine.client.base_url_check import allow_http_from_env, check_base_url
from logikal_square_sync.logikal.engine.client.errors import LogikalNotFoundError
from logikal_square_sync.logikal.engine.client.navigation import Target
from logikal_square_sync.logikal.engine.client.records import ProjectRecord
from logikal_square_sync.logikal.engine.client.session import ConnectionSettings, LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionBudget, SessionPool
from logikal_square_sync.logikal.engine.store.tree import write_projects
from logikal_square_sync.logikal.engine.store.writes import write_transaction
from logikal_square_sync.logikal.engine.syncs.directory_sync import walk_directories
from logikal_square_sync.logikal.engine.walk.task_runner import Task, TaskQueue, run_tasks
from logikal_square_sync.logikal.session_budget import DagsterSessionBudget
from logikal_square_sync.policies import policies


class LogikalNotConfigured(RuntimeError):
    """LOGIKAL_* variables missing: new projects cannot be looked up (known ones still sync)."""


@dataclass(frozen=True)
class Found:
    record: ProjectRecord
    directory_path: str


def connection_settings() -> ConnectionSettings:
    # The same variables the code location's LogikalResource reads (there through dg.EnvVar, in
    # the run worker). This process is no Dagster run, so it reads them here; never logged.
    missing = [
        name
        for name in ("LOGIKAL_BASE_URL", "LOGIKAL_USERNAME", "LOGIKAL_PASSWORD")
        if not os.environ.get(name)
    ]
    if missing:
        raise LogikalNotConfigured(f"cannot look up new LogiKal projects: {', '.join(missing)} not set")
    base_url = os.environ["LOGIKAL_BASE_URL"].strip()
    check_base_url(base_url, allow_http=allow_http_from_env())
    return ConnectionSettings(
        base_url=base_url,
        username=os.environ["LOGIKAL_USERNAME"],
        password=os.environ["LOGIKAL_PASSWORD"],
        ca_bundle=os.environ.get("LOGIKAL_CA_BUNDLE", "").strip() or None,
    )


@contextlib.contextmanager
def _budget() -> Iterator[SessionBudget | None]:
    """A slot of the Dagster pool `logikal_sessions` when this process sees the instance."""
    if not os.environ.get("DAGSTER_HOME"):
        yield None  # no instance here: the lookup's single session is all it uses
        return
    with dg.DagsterInstance.get() as instance:
        if not instance.event_log_storage.supports_global_concurrency_limits:
            yield None
            return
        sessions = policies().logikal.sessions
        budget = DagsterSessionBudget(
            instance,
            # Not a run: claims are named after the API so the UI's pool page says who holds them.
            run_id="lss-api",
            step_key=f"api-project-lookup-{uuid.uuid4().hex[:8]}",
            limit=sessions.budget,
            poll_seconds=sessions.poll_seconds,
        )
        try:
            yield budget
        finally:
            budget.free_all()


def _matches(record: ProjectRecord, wanted: str) -> bool:
    try:
        return record.id == str(uuid.UUID(wanted))
    except ValueError:
        return record.name.strip().lower() == wanted.strip().lower()


def find_at_logikal(settings: ConnectionSettings, wanted: str) -> list[Found]:
    """Every live project at LogiKal with this GUID (or name, case-insensitive)."""
    found: list[Found] = []
    lock = threading.Lock()
    with _budget() as budget, SessionPool(settings, size=1, budget=budget) as pool:
        walk = walk_directories(pool)
        cost = pool.costs.select_directory + pool.costs.listing

        def lister(path: str):
            def run(session: LogikalSession, queue: TaskQueue) -> None:
                try:
                    session.goto(Target(path), sibling_elevations=pool.sibling_elevations)
                except LogikalNotFoundError:
                    return  # removed since the walk listed it
                for project in session.list_projects():
                    if not project.is_deleted and _matches(project, wanted):
                        with lock:
                            found.append(Found(project, path))

            return run

        paths = [record.path for record, _ in walk.found]
        run_tasks(
            pool,
            [Task(Target(path), cost, lister(path), f"look for {wanted!r} in '{path}'") for path in paths],
        )
    return found


def add_to_warehouse(engine: sa.Engine, found: Found) -> ProjectRef:
    """The project's row, as `logikal/projects` writes it, so its contents sync finds it."""
    with write_transaction(engine) as conn:
        write_projects(conn, [(found.record, found.directory_path)], utc_now())
    return ProjectRef(found.record.id, found.record.name, found.directory_path, found.record.job_number)

"""A LogiKal sandbox served over real HTTP, session pools on it, and the source's truth."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from logikal_square_sync.logikal.assets import logikal_directories, logikal_project_contents, logikal_projects
from logikal_square_sync.logikal.checks import parts_lists_readable, project_contents_fresh
from logikal_square_sync.logikal.engine.client import ConnectionSettings
from logikal_square_sync.logikal.engine.directory_sync import DirectorySyncResult, sync_directories
from logikal_square_sync.logikal.engine.project_contents_sync import (
    ProjectContentsResult,
    sync_project_contents,
)
from logikal_square_sync.logikal.engine.project_list_sync import ProjectSyncResult, sync_projects
from logikal_square_sync.logikal.engine.session_pool import SessionPool
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.resource import LogikalResource
from logikal_square_sync.logikal.sensors import logikal_sensors
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox, LogikalSandboxConfig, create_app
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_tests.instances import instance_for_test, postgres_instance_for_test
from logikal_square_sync_tests.marks import SQLITE_ONLY
from logikal_square_sync_tests.postgres import POSTGRES_ADMIN_URL

# 3 directories, 3 projects of 2 phases with 2 elevations each: every rule, little data.
# Parts lists at their minimum (~70 KB: one page per table).
SMALL = LogikalSandboxConfig(
    seed=5,
    root_directories=1,
    directory_depth=2,
    subdirectories_per_directory=2,
    projects_per_directory=1,
    phases_per_project=2,
    elevations_per_phase=2,
    parts_list_target_bytes=0,
)


# Where LogiKal's real behaviour is unknown the sandbox answers each way (docs/logikal-api.md §11);
# the sync tests that matter run in every mode: `@pytest.mark.parametrize("sandbox", MODES, indirect=True)`.
MODES = [
    pytest.param({}, id="siblings-allowed"),
    pytest.param(
        {"allow_sibling_elevation_select": False, "sibling_refusal_status": 409}, id="siblings-refused-409"
    ),
    pytest.param(
        {"allow_sibling_elevation_select": False, "sibling_refusal_status": 405}, id="siblings-refused-405"
    ),
    pytest.param({"first_select_answer_lost": True}, id="first-select-answer-lost"),
    pytest.param({"first_select_not_found": True}, id="first-select-not-found"),
]
# Every mode on SQLite, the documented one on PostgreSQL too (the convergence test keeps MODES
# on both, so each mode meets each warehouse at least once).
MODES_ON_SQLITE = [
    mode if index == 0 else pytest.param(*mode.values, id=mode.id, marks=SQLITE_ONLY)
    for index, mode in enumerate(MODES)
]


def sandbox_config(**changes: Any) -> LogikalSandboxConfig:
    return LogikalSandboxConfig(**{**SMALL.__dict__, **changes})


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> LogikalSandbox:
    """The small sandbox; `@pytest.mark.parametrize("sandbox", [{field: value}], indirect=True)` varies it."""
    return LogikalSandbox(sandbox_config(**getattr(request, "param", {})))


@pytest.fixture
def logikal_url(sandbox: LogikalSandbox) -> Iterator[str]:
    with serve_in_thread(create_app(sandbox)) as served:
        yield served.url + BASE_PATH


class HookTransport(httpx.HTTPTransport):
    """Calls `after(request, response)` once each response is read: faults at exact moments."""

    def __init__(self, after: Callable[[httpx.Request, httpx.Response], None]) -> None:
        super().__init__()
        self.after = after

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        self.after(request, response)
        return response


@dataclass
class Logikal:
    """Opens session pools on the sandbox with fast retries."""

    url: str
    sandbox: LogikalSandbox
    transport: httpx.BaseTransport | None = None
    max_attempts: int = 4
    timeout_seconds: float = 10.0
    password: str | None = None

    def settings(self, **changes: Any) -> ConnectionSettings:
        values = {
            "base_url": self.url,
            "username": self.sandbox.config.username,
            "password": self.password or self.sandbox.config.password,
            "timeout_seconds": self.timeout_seconds,
            "max_attempts": self.max_attempts,
            "retry_base_delay_seconds": 0.01,
            "transport": self.transport,
        }
        return ConnectionSettings(**{**values, **changes})

    @contextlib.contextmanager
    def pool(self, size: int = 3, **kwargs: Any) -> Iterator[SessionPool]:
        with SessionPool(self.settings(), size, **kwargs) as pool:
            yield pool

    def after_each_response(self, hook: Callable[[httpx.Request, httpx.Response], None]) -> None:
        self.transport = HookTransport(hook)


@pytest.fixture
def logikal(logikal_url: str, sandbox: LogikalSandbox) -> Logikal:
    return Logikal(logikal_url, sandbox)


@dataclass
class FullSync:
    directories: DirectorySyncResult
    projects: ProjectSyncResult
    contents: dict[str, ProjectContentsResult]

    def total(self, field: str) -> int:
        return sum(getattr(result, field) for result in self.contents.values())


@pytest.fixture
def postgres_instance(postgres_database: str) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on a PostgreSQL database of its own (the warehouse uses another)."""
    # `postgres_database` first: it fails (under CI) or skips with the reason when PostgreSQL is away.
    with postgres_instance_for_test(POSTGRES_ADMIN_URL) as instance:
        yield instance


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def defs(logikal_url: str, sandbox: LogikalSandbox, warehouse: WarehouseResource) -> dg.Definitions:
    """The LogiKal assets, checks, job and sensors on the sandbox and the test's warehouse."""
    resource = LogikalResource(
        base_url=logikal_url,
        username=sandbox.config.username,
        password=sandbox.config.password,
        retry_base_delay_seconds=0.01,
        allow_http=True,  # the sandbox serves plain http
    )
    return dg.Definitions(
        assets=[logikal_directories, logikal_projects, logikal_project_contents],
        asset_checks=[project_contents_fresh, parts_lists_readable],
        jobs=[logikal_project_sync],
        sensors=logikal_sensors(),
        resources={"logikal": resource, "warehouse": warehouse},
    )


def sync_everything(logikal: Logikal, engine: sa.Engine, pool_size: int = 3, **pool_kwargs: Any) -> FullSync:
    """What the schedules and the sensor do together: the tree, the projects, then every project."""
    with logikal.pool(pool_size, **pool_kwargs) as pool:
        directories = sync_directories(pool, engine)
    with logikal.pool(pool_size, **pool_kwargs) as pool:
        projects = sync_projects(pool, engine)
    contents = {}
    for project_id in sorted(projects.live_project_ids):
        with logikal.pool(pool_size, **pool_kwargs) as pool:
            contents[project_id] = sync_project_contents(pool, engine, project_id)
    return FullSync(directories, projects, contents)


# --- the source's truth ------------------------------------------------------------


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def source_truth(sandbox: LogikalSandbox) -> dict[str, Any]:
    directories = {
        d["path"]: (d["name"], d["path"].rsplit("/", 1)[0] if "/" in d["path"] else None)
        for d in sandbox.directories()
    }
    projects, phases, elevations, parts = {}, {}, {}, {}
    for p in sandbox.projects():
        projects[p["id"]] = (
            sandbox.project_directory(p["id"]),
            p["name"],
            p["jobNumber"],
            p["offerNumber"],
            p["personInCharge"],
            _utc(p["createdDate"]),
            _utc(p["changedDate"]),
            p["isDeleted"],
        )
        for phase in sandbox.phases(p["id"]):
            phases[(p["id"], phase["id"])] = (phase["name"], phase["description"])
            for e in sandbox.elevations(p["id"], phase["id"]):
                elevations[e["id"]] = (
                    p["id"],
                    phase["id"],
                    e["name"],
                    e["versionId"],
                    e["amount"],
                    e["width"],
                    e["height"],
                    e["systemDescription"],
                    _utc(e["changedDate"]),
                    e["isInRecycleBin"],
                )
                if not e["isInRecycleBin"]:
                    parts[e["id"]] = hashlib.sha256(sandbox.parts_list_bytes(e["id"])).hexdigest()
    return {
        "directories": directories,
        "projects": projects,
        "phases": phases,
        "elevations": elevations,
        "parts_lists": parts,
    }


def warehouse_state(engine: sa.Engine, *, live_only: bool = True) -> dict[str, Any]:
    def live(table: sa.Table) -> sa.ColumnElement[bool]:
        return table.c.deleted_at.is_(None) if live_only else sa.true()

    d, p, ph, e, pl = (
        t.logikal_directories,
        t.logikal_projects,
        t.logikal_phases,
        t.logikal_elevations,
        t.logikal_parts_lists,
    )
    with engine.connect() as conn:
        return {
            "directories": {
                row.path: (row.name, row.parent_path) for row in conn.execute(sa.select(d).where(live(d)))
            },
            "projects": {
                row.id: (
                    row.directory_path,
                    row.name,
                    row.job_number,
                    row.offer_number,
                    row.person_in_charge,
                    row.created_at,
                    row.changed_at,
                    row.is_deleted,
                )
                for row in conn.execute(sa.select(p).where(live(p)))
            },
            "phases": {
                (row.project_id, row.id): (row.name, row.description)
                for row in conn.execute(sa.select(ph).where(live(ph)))
            },
            "elevations": {
                row.id: (
                    row.project_id,
                    row.phase_id,
                    row.name,
                    row.version_id,
                    row.amount,
                    row.width,
                    row.height,
                    row.system_description,
                    row.changed_at,
                    row.is_in_recycle_bin,
                )
                for row in conn.execute(sa.select(e).where(live(e)))
            },
            # Parts lists of live elevations outside the recycle bin: what the source serves now.
            "parts_lists": {
                row.elevation_id: row.sha256
                for row in conn.execute(
                    sa.select(pl.c.elevation_id, pl.c.sha256)
                    .join(e, e.c.id == pl.c.elevation_id)
                    .where(e.c.deleted_at.is_(None), e.c.is_in_recycle_bin.is_(False))
                )
            },
        }


def assert_warehouse_equals_source(engine: sa.Engine, sandbox: LogikalSandbox) -> None:
    truth, stored = source_truth(sandbox), warehouse_state(engine)
    for kind in truth:
        assert stored[kind] == truth[kind], kind


_TREE = ("directories", "projects", "phases", "elevations")
NOTHING_DELETED: dict[str, set[Any]] = {kind: set() for kind in _TREE}


def marked_deleted(engine: sa.Engine) -> dict[str, set[Any]]:
    """The keys of the rows with `deleted_at`, by kind."""
    everything, live = warehouse_state(engine, live_only=False), warehouse_state(engine)
    return {kind: set(everything[kind]) - set(live[kind]) for kind in _TREE}


def table_rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(table))]

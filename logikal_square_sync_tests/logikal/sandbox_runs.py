"""The small LogiKal sandbox and its modes, session pools on it, and a full sync as the schedules run it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from _pytest.mark import ParameterSet

from logikal_square_sync.logikal.engine.client.session import ConnectionSettings
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.syncs.directory_sync import DirectorySyncResult, sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import ProjectSyncResult, sync_projects
from logikal_square_sync.logikal.engine.walk.result import ProjectContentsResult
from logikal_square_sync_sandbox.logikal import LogikalSandbox, LogikalSandboxConfig
from logikal_square_sync_tests.marks import SQLITE_ONLY

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
MODE_CHANGES: dict[str, dict[str, Any]] = {
    "siblings-allowed": {},
    "siblings-refused-409": {"allow_sibling_elevation_select": False, "sibling_refusal_status": 409},
    "siblings-refused-405": {"allow_sibling_elevation_select": False, "sibling_refusal_status": 405},
    "first-select-answer-lost": {"first_select_answer_lost": True},
    "first-select-not-found": {"first_select_not_found": True},
}
MODES = [pytest.param(changes, id=name) for name, changes in MODE_CHANGES.items()]


def modes_on_sqlite(**extra: Any) -> list[ParameterSet]:
    """Every mode (with `extra` laid over it) on SQLite, the documented one on PostgreSQL too.

    The convergence test keeps MODES on both, so each mode meets each warehouse at least once.
    """
    return [
        pytest.param({**changes, **extra}, id=name, marks=() if index == 0 else SQLITE_ONLY)
        for index, (name, changes) in enumerate(MODE_CHANGES.items())
    ]


MODES_ON_SQLITE = modes_on_sqlite()


def sandbox_config(**changes: Any) -> LogikalSandboxConfig:
    return LogikalSandboxConfig(**{**SMALL.__dict__, **changes})


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


@dataclass
class FullSync:
    directories: DirectorySyncResult
    projects: ProjectSyncResult
    contents: dict[str, ProjectContentsResult]

    def total(self, field: str) -> int:
        return sum(getattr(result, field) for result in self.contents.values())


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

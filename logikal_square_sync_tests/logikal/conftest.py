"""Fixtures: a LogiKal sandbox over real HTTP, session pools on it, Dagster instances and definitions."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from logikal_square_sync.logikal.assets import logikal_directories, logikal_project_contents, logikal_projects
from logikal_square_sync.logikal.checks import parts_lists_readable, project_contents_fresh
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.resource import LogikalResource
from logikal_square_sync.logikal.sensors import logikal_sensors
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox, create_app
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_tests.instances import instance_for_test, postgres_instance_for_test
from logikal_square_sync_tests.logikal.sandbox_runs import Logikal, sandbox_config
from logikal_square_sync_tests.postgres import POSTGRES_ADMIN_URL


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> LogikalSandbox:
    """The small sandbox; `@pytest.mark.parametrize("sandbox", [{field: value}], indirect=True)` varies it."""
    return LogikalSandbox(sandbox_config(**getattr(request, "param", {})))


@pytest.fixture
def logikal_url(sandbox: LogikalSandbox) -> Iterator[str]:
    with serve_in_thread(create_app(sandbox)) as served:
        yield served.url + BASE_PATH


@pytest.fixture
def logikal(logikal_url: str, sandbox: LogikalSandbox) -> Logikal:
    return Logikal(logikal_url, sandbox)


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

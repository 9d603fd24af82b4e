"""The run launcher's health check against real gRPC code servers (a live one and a dead port).

The topology test kills a whole code server under a running sync; these are the launcher's
verdicts one by one, fast: a server that does not know the run, a server that cannot be reached
(first presumed restarting, then dead once the bound has passed), and dagster.yaml naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import time_machine
import yaml
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient

from logikal_square_sync.instance.run_launcher import HealthCheckedRunLauncher
from logikal_square_sync_sandbox.demo import write_local_instance_yaml
from logikal_square_sync_sandbox.server import free_port
from logikal_square_sync_tests.deploy.compose import ROOT
from logikal_square_sync_tests.deploy.processes import wait_for

FAR_AHEAD = datetime(2100, 1, 1, tzinfo=UTC)
DEFINITIONS = """
import dagster as dg

@dg.asset
def nothing() -> None: ...

defs = dg.Definitions(assets=[nothing])
"""


def _run(grpc_info: dict[str, object] | None) -> dg.DagsterRun:
    tags = {GRPC_INFO_TAG: json.dumps(grpc_info)} if grpc_info else {}
    return dg.DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), tags=tags)


@pytest.fixture(scope="module")
def code_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real `dagster api grpc` server on a free port, serving a one-asset definitions file."""
    folder = tmp_path_factory.mktemp("code_server")
    (folder / "defs.py").write_text(DEFINITIONS)
    port = free_port()
    command = [sys.executable, "-m", "dagster", "api", "grpc", "--port", str(port), "-f", "defs.py"]
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")

        def serving() -> bool:
            assert server.poll() is None, (folder / "server.log").read_text()
            return client.health_check_query() == "SERVING"

        wait_for("the code server", serving, timeout=120)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.fixture
def grpc_deadlines(pinned_clock: time_machine.Traveller) -> None:
    """gRPC turns a call's timeout into a deadline from time.time(): at the suite's pinned moment,
    earlier than the machine's, every deadline has already passed. Far ahead, none has."""
    pinned_clock.move_to(FAR_AHEAD)


@pytest.mark.usefixtures("grpc_deadlines")
def test_a_code_server_that_does_not_know_the_run_means_its_worker_is_gone(code_server: int) -> None:
    launcher = HealthCheckedRunLauncher(unreachable_after_seconds=60)
    result = launcher.check_run_worker_health(_run({"host": "127.0.0.1", "port": code_server}))
    assert result.status == WorkerStatus.FAILED
    assert f"The code server at 127.0.0.1:{code_server} does not run this run" in (result.msg or "")


@pytest.mark.usefixtures("grpc_deadlines")
def test_an_unreachable_code_server_fails_the_run_only_once_the_bound_has_passed() -> None:
    now = [1000.0]
    launcher = HealthCheckedRunLauncher(unreachable_after_seconds=60, clock=lambda: now[0])
    run = _run({"host": "127.0.0.1", "port": free_port()})  # nothing listens there

    first = launcher.check_run_worker_health(run)
    assert first.status == WorkerStatus.RUNNING, first  # a restarting container, for all we know
    assert "unreachable" in (first.msg or "") and "after 60 s" in (first.msg or "")
    now[0] += 59
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    now[0] += 1
    last = launcher.check_run_worker_health(run)
    assert last.status == WorkerStatus.FAILED, last
    assert "has been unreachable for 60 s" in (last.msg or "")
    # Another run's count starts on its own.
    assert launcher.check_run_worker_health(_run({"host": "127.0.0.1", "port": free_port()})).status == (
        WorkerStatus.RUNNING
    )


def test_a_run_without_a_recorded_code_server_is_left_to_its_maximum_runtime() -> None:
    launcher = HealthCheckedRunLauncher(unreachable_after_seconds=60)
    result = launcher.check_run_worker_health(_run(None))
    assert result.status == WorkerStatus.RUNNING and result.msg == "no code server recorded for this run"


def test_dagster_yaml_runs_every_run_through_it(tmp_path: Path) -> None:
    configured = yaml.safe_load((ROOT / "dagster.yaml").read_text())["run_launcher"]
    with dg.DagsterInstance.from_config(str(write_local_instance_yaml(tmp_path).parent)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, HealthCheckedRunLauncher)
        assert launcher.supports_check_run_worker_health
        assert launcher._unreachable_after_seconds == configured["config"]["unreachable_after_seconds"]

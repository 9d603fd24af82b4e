"""The production topology as processes: code server, webserver and daemon on PostgreSQL storage.

Each process is started with the command compose.yaml gives its service (the image's
entrypoint `deploy/commands.sh` and the service's role), with the repository's own
dagster.yaml in DAGSTER_HOME and everything else from environment variables, as in the
containers. The sandbox Square and LogiKal servers and a Slack stand-in run in this process,
so the tests can arm faults and read the source's truth. Dagster's storage and the warehouse
are two throw-away databases on the CI PostgreSQL (under CI=true an unreachable server fails
the tests; elsewhere they are skipped with the reason, like `postgres_database`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
import yaml

from logikal_square_sync.interfaces.force_sync import DagsterApi
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox
from logikal_square_sync_sandbox.logikal import create_app as logikal_app
from logikal_square_sync_sandbox.server import free_port, serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig
from logikal_square_sync_sandbox.square import create_app as square_app
from logikal_square_sync_tests.alerts.conftest import (
    HeartbeatMonitor,
    SlackStandIn,
    _slack_app,
    heartbeat_app,
)
from logikal_square_sync_tests.conftest import POSTGRES_ADMIN_URL, reachable_postgres_admin
from logikal_square_sync_tests.logikal.sandbox_runs import sandbox_config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLES = ("code-server", "webserver", "daemon")
LOCATION = "logikal_square_sync"
# Variables of the outer environment that would change what the processes do.
_OWN_PREFIXES = ("DAGSTER_", "LSS_", "SQUARE_", "LOGIKAL_", "SMTP_", "ALERT_")
_OWN_NAMES = {"WAREHOUSE_URL", "SLACK_WEBHOOK_URL", "BACKGROUND_SYNC_ENABLED", "SYNC_TIMEZONE"}

# Every Square object on a cron that fires each minute: one schedule, square_daily_sync,
# ticks within a minute of being started. Layered over the packaged policies.yaml.
POLICY_OVERRIDE = """\
square:
  locations: {cron: "* * * * *"}
  catalog: {cron: "* * * * *"}
  orders: {cron: "* * * * *"}
  inventory: {cron: "* * * * *"}
# The run-failure alert sensor looks every 5 s rather than 30: the same sensor, sooner told.
alerts: {run_failure_tick_seconds: 5}
"""
SQUARE_CONFIG = SquareSandboxConfig(seed=11, locations=3, orders=300, items=8, categories=3, history_days=10)


def compose_commands() -> dict[str, list[str]]:
    """The argv each application service of compose.yaml runs: the image's entrypoint + `command`."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/dagster/app/deploy/commands.sh"]' in dockerfile
    return {
        name: [str(ROOT / "deploy" / "commands.sh"), *services[name]["command"]] for name in ("init", *ROLES)
    }


@contextlib.contextmanager
def throwaway_databases(*purposes: str, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[list[sa.URL]]:
    """Fresh databases on the test PostgreSQL, dropped afterwards; fail under CI if it is down."""
    admin = reachable_postgres_admin(admin_url)
    names = [f"lss_{purpose}_{uuid.uuid4().hex[:10]}" for purpose in purposes]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield [admin.url.set(database=name) for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _stop(processes: list[subprocess.Popen], grace: float = 30) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after `grace` seconds."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/server_info", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 0.5) -> Any:
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


@dataclass
class Topology:
    env: dict[str, str]
    home: Path
    logs: Path
    webserver_url: str
    warehouse_url: str
    square: SquareSandbox
    logikal: LogikalSandbox
    slack: SlackStandIn
    heartbeat: HeartbeatMonitor
    api: DagsterApi
    commands: dict[str, list[str]]
    cwd: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, role: str) -> None:
        """Starts `role` as its container would, appending to its log (a restart keeps the old lines)."""
        with (self.logs / f"{role}.log").open("a") as log:
            self.processes[role] = subprocess.Popen(
                self.commands[role],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, role: str) -> None:
        """SIGKILLs `role` with every process under it at once, as when its container or node dies."""
        process = self.processes[role]
        tree = process_tree(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in tree:  # anything that left the process group dies with the "container" too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=60)

    def restart(self, role: str) -> None:
        """What compose's `restart: unless-stopped` does for a dead container: the same command again."""
        self.start(role)

    def wait_healthy(self, role: str, timeout: float = 180) -> None:
        """Waits until `role` passes the image's HEALTHCHECK (one Python process per try)."""
        check = [str(ROOT / "deploy" / "commands.sh"), "healthcheck", role]

        def healthy() -> bool:
            self.assert_alive()
            done = subprocess.run(check, env=self.env, cwd=self.cwd, capture_output=True, timeout=120)
            return done.returncode == 0

        wait_for(f"the {role} healthcheck", healthy, timeout=timeout, poll=2.0)

    def log_tail(self, chars: int = 6000) -> str:
        parts = []
        for role in ROLES:
            path = self.logs / f"{role}.log"
            if path.exists():
                parts.append(f"--- {role} ---\n{path.read_text()[-chars:]}")
        return "\n".join(parts)

    def assert_alive(self) -> None:
        for role, process in self.processes.items():
            assert process.poll() is None, f"{role} exited with {process.returncode}\n{self.log_tail()}"

    def repository(self) -> dict[str, str]:
        return self.api.repository_of("logikal_project_sync", wait_seconds=120)

    def instance(self) -> dg.DagsterInstance:
        """The same instance the processes use (PostgreSQL storage from DAGSTER_PG_*)."""
        with _environment(self.env):
            return dg.DagsterInstance.from_config(str(self.home))

    def launch_assets(self, *paths: list[str], tags: dict[str, str] | None = None) -> str:
        """Submits a run of these assets through GraphQL (the run queue), like the UI's Materialize."""
        params = {
            "selector": {
                **self.repository(),
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": path} for path in paths],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = self.api.query(LAUNCH, {"executionParams": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def wait_for_run(self, run_id: str, timeout: float = 150) -> str:
        def finished() -> str | None:
            self.assert_alive()
            status = self.api.status(run_id)
            return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

        return wait_for(f"run {run_id} to finish", finished, timeout)

    def instigator(self, kind: str, name: str, start: bool) -> dict[str, Any]:
        """Starts or stops a schedule or sensor through GraphQL, like its toggle in the UI."""
        selector = {**self.repository(), f"{kind}Name": name}
        if start:
            mutation = START_SCHEDULE if kind == "schedule" else START_SENSOR
            result = self.api.query(mutation, {"selector": selector})["result"]
        else:
            state_id = self.api.query(INSTIGATOR_STATE[kind], {"selector": selector})["state"]
            mutation = STOP_SCHEDULE if kind == "schedule" else STOP_SENSOR
            result = self.api.query(mutation, {"id": state_id[f"{kind}State"]["id"]})["result"]
        assert "Error" not in result["__typename"], result
        return result

    def stop_background_syncs(self) -> None:
        """Stops every running schedule and job-launching sensor via GraphQL, like the UI's toggles.

        The alert sensors (they launch nothing) keep running, as in production.
        """
        for _ in range(2):  # the second pass checks the first
            found = self.api.query(INSTIGATORS, {"selector": self.repository()})["repository"]
            running = [
                (kind, instigator["name"])
                for kind in ("schedule", "sensor")
                for instigator in found[f"{kind}s"]
                if (kind == "schedule" or instigator["targets"])
                and instigator[f"{kind}State"]["status"] == "RUNNING"
            ]
            for kind, name in running:
                self.instigator(kind, name, start=False)
        assert not running, running

    def sensor_ticks(self, name: str) -> list[dict[str, Any]]:
        selector = {**self.repository(), "sensorName": name}
        return self.api.query(SENSOR_TICKS, {"selector": selector})["state"]["sensorState"]["ticks"]


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""
START_SCHEDULE = """
mutation Start($selector: ScheduleSelector!) {
  result: startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on Error { message }
  }
}
"""
START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  result: startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { id status } }
    ... on Error { message }
  }
}
"""
STOP_SCHEDULE = """
mutation Stop($id: String!) {
  result: stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on Error { message }
  }
}
"""
STOP_SENSOR = """
mutation Stop($id: String!) {
  result: stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { id status } }
    ... on Error { message }
  }
}
"""
INSTIGATOR_STATE = {
    "schedule": """
query State($selector: ScheduleSelector!) {
  state: scheduleOrError(scheduleSelector: $selector) { ... on Schedule { scheduleState { id } } }
}
""",
    "sensor": """
query State($selector: SensorSelector!) {
  state: sensorOrError(sensorSelector: $selector) { ... on Sensor { sensorState { id } } }
}
""",
}
INSTIGATORS = """
query Instigators($selector: RepositorySelector!) {
  repository: repositoryOrError(repositorySelector: $selector) {
    ... on Repository {
      schedules { name scheduleState { status } }
      sensors { name targets { pipelineName } sensorState { status } }
    }
  }
}
"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  state: sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 20) { id status } } }
  }
}
"""


def _pg_env(url: sa.URL) -> dict[str, str]:
    return {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": url.database or "",
    }


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with running_topology(tmp_path_factory.mktemp("topology")) as running:
        yield running


@contextlib.contextmanager
def running_topology(tmp: Path, postgres_admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[Topology]:
    """The processes of compose.yaml in `tmp`, on two throw-away databases of that PostgreSQL."""
    commands = compose_commands()
    home, logs = tmp / "dagster_home", tmp / "logs"
    home.mkdir()
    logs.mkdir()
    # What the image does: the repository's dagster.yaml, unchanged, in DAGSTER_HOME.
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    (tmp / "policies.yaml").write_text(POLICY_OVERRIDE)
    square = SquareSandbox(SQUARE_CONFIG)
    logikal = LogikalSandbox(sandbox_config())
    posts: list[dict] = []
    pings: list[str] = []  # the heartbeat monitor's
    with (
        throwaway_databases("dagster", "warehouse", admin_url=postgres_admin_url) as databases,
        serve_in_thread(square_app(square)) as square_served,
        serve_in_thread(logikal_app(logikal)) as logikal_served,
        serve_in_thread(_slack_app(posts)) as slack_served,
        serve_in_thread(heartbeat_app(pings)) as heartbeat_served,
    ):
        dagster_db, warehouse_db = databases
        slack = SlackStandIn(url=slack_served.url, posts=posts)
        heartbeat = HeartbeatMonitor(heartbeat_served.url, pings)
        code_port, web_port = free_port(), free_port()
        webserver_url = f"http://127.0.0.1:{web_port}"
        warehouse_url = warehouse_db.render_as_string(hide_password=False)
        env = {
            **{k: v for k, v in os.environ.items() if not (k.startswith(_OWN_PREFIXES) or k in _OWN_NAMES)},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DAGSTER_HOME": str(home),
            **_pg_env(dagster_db),
            "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
            "DAGSTER_CODE_SERVER_PORT": str(code_port),
            "DAGSTER_WEBSERVER_PORT": str(web_port),
            "DAGSTER_WEBSERVER_URL": webserver_url,
            "LSS_ROLE_FILE": str(tmp / "role"),
            "LSS_POLICIES_FILE": str(tmp / "policies.yaml"),
            "WAREHOUSE_URL": warehouse_url,
            "SQUARE_BASE_URL": square_served.url,
            "SQUARE_ACCESS_TOKEN": square.config.access_token,
            "LOGIKAL_BASE_URL": logikal_served.url + BASE_PATH,
            "LOGIKAL_USERNAME": logikal.config.username,
            "LOGIKAL_PASSWORD": logikal.config.password,
            "LOGIKAL_ALLOW_HTTP": "true",  # the sandbox serves plain http
            "SLACK_WEBHOOK_URL": slack.webhook_url,
            "LSS_HEARTBEAT_URL": heartbeat.ping_url,
            # On, as in production (off, every syncing tick skips, even one started in the UI).
            # Nothing syncs by itself all the same: before the daemon starts, the fixture stops
            # every schedule and syncing sensor, and the tests start the ones they need, as an
            # operator would in the UI (a cron of the packaged policies could otherwise fire
            # during the test, at whatever hour it runs).
            "BACKGROUND_SYNC_ENABLED": "true",
        }
        # compose's `init` service: create Dagster's schema once, before the processes share it.
        init = subprocess.run(commands["init"], env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stdout + init.stderr
        topology = Topology(
            env=env,
            home=home,
            logs=logs,
            webserver_url=webserver_url,
            warehouse_url=warehouse_url,
            square=square,
            logikal=logikal,
            slack=slack,
            heartbeat=heartbeat,
            api=DagsterApi(webserver_url),
            commands=commands,
            cwd=tmp,
        )
        try:
            for role in ROLES:
                if role == "daemon":
                    # Stopped before the daemon could tick any of them.
                    wait_for("the webserver", lambda: topology.assert_alive() or _answers(webserver_url), 180)
                    topology.stop_background_syncs()
                topology.start(role)
            # Ready once the webserver serves the code server's definitions (cheap to poll) ...
            wait_for("the webserver", lambda: topology.assert_alive() or _answers(webserver_url), timeout=180)
            topology.repository()
            # ... then each role passes the image's HEALTHCHECK.
            for role in ROLES:
                topology.wait_healthy(role, timeout=120)
            topology.instigator("sensor", "alert_on_run_failure", start=True)
            yield topology
        finally:
            _stop(list(topology.processes.values()))
            topology.api.close()
            warehouse_engine(warehouse_url).dispose()

"""The production topology as processes: code server, webserver and daemon on PostgreSQL storage.

Each process is started with the command compose.yaml gives its service (the image's
entrypoint `deploy/commands.sh` and the service's role), with the repository's own
dagster.yaml in DAGSTER_HOME and everything else from environment variables, as in the
containers. The sandbox Square and LogiKal servers, a Slack stand-in and a heartbeat monitor
run in this process, so the tests can arm faults and read the source's truth. Dagster's storage
and the warehouse are two throw-away databases on the test PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from logikal_square_sync.interfaces.force_sync import DagsterApi
from logikal_square_sync.interfaces.force_sync.graphql import FINISHED, LAUNCH_MUTATION
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox
from logikal_square_sync_sandbox.logikal import create_app as logikal_app
from logikal_square_sync_sandbox.server import free_port, serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig
from logikal_square_sync_sandbox.square import create_app as square_app
from logikal_square_sync_tests.alerts.heartbeat_monitor import HeartbeatMonitor, heartbeat_app
from logikal_square_sync_tests.alerts.slack import SlackStandIn, slack_app
from logikal_square_sync_tests.deploy import graphql
from logikal_square_sync_tests.deploy.compose import ROLES, ROOT, compose_commands, container_environment
from logikal_square_sync_tests.deploy.processes import environment, process_tree, stop_processes, wait_for
from logikal_square_sync_tests.logikal.sandbox_runs import sandbox_config
from logikal_square_sync_tests.postgres import POSTGRES_ADMIN_URL, throwaway_databases

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
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

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

    def wait_until_served(self, timeout: float = 180) -> None:
        """Waits until the webserver answers (cheap to poll), failing at once if a process died."""

        def answers() -> bool:
            self.assert_alive()
            try:
                return httpx.get(f"{self.webserver_url}/server_info", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the webserver", answers, timeout=timeout)

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
        with environment(self.env):
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
        result = self.api.query(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def wait_for_run(self, run_id: str, timeout: float = 150) -> str:
        def finished() -> str | None:
            self.assert_alive()
            status = self.api.status(run_id)
            return status if status in FINISHED else None

        return wait_for(f"run {run_id} to finish", finished, timeout)

    def instigator(self, kind: str, name: str, start: bool) -> dict[str, Any]:
        """Starts or stops a schedule or sensor through GraphQL, like its toggle in the UI."""
        selector = {**self.repository(), f"{kind}Name": name}
        if start:
            result = self.api.query(graphql.START[kind], {"selector": selector})["result"]
        else:
            state = self.api.query(graphql.STATE[kind], {"selector": selector})["state"]
            result = self.api.query(graphql.STOP[kind], {"id": state[f"{kind}State"]["id"]})["result"]
        assert "Error" not in result["__typename"], result
        return result

    def stop_background_syncs(self) -> None:
        """Stops every running schedule and job-launching sensor via GraphQL, like the UI's toggles.

        The alert sensors (they launch nothing) keep running, as in production.
        """
        for _ in range(2):  # the second pass checks the first
            found = self.api.query(graphql.INSTIGATORS, {"selector": self.repository()})["repository"]
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
        return self.api.query(graphql.SENSOR_TICKS, {"selector": selector})["state"]["sensorState"]["ticks"]


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
    posts: list[dict[str, Any]] = []
    pings: list[str] = []  # the heartbeat monitor's
    with (
        throwaway_databases("dagster", "warehouse", admin_url=postgres_admin_url) as databases,
        serve_in_thread(square_app(square)) as square_served,
        serve_in_thread(logikal_app(logikal)) as logikal_served,
        serve_in_thread(slack_app(posts)) as slack_served,
        serve_in_thread(heartbeat_app(pings)) as heartbeat_served,
    ):
        dagster_db, warehouse_db = databases
        slack = SlackStandIn(url=slack_served.url, posts=posts)
        heartbeat = HeartbeatMonitor(heartbeat_served.url, pings)
        code_port, web_port = free_port(), free_port()
        webserver_url = f"http://127.0.0.1:{web_port}"
        warehouse_url = warehouse_db.render_as_string(hide_password=False)
        env = {
            **container_environment(home, dagster_db),
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
                    topology.wait_until_served()
                    topology.stop_background_syncs()
                topology.start(role)
            # Ready once the webserver serves the code server's definitions (cheap to poll) ...
            topology.wait_until_served()
            topology.repository()
            # ... then each role passes the image's HEALTHCHECK.
            for role in ROLES:
                topology.wait_healthy(role, timeout=120)
            topology.instigator("sensor", "alert_on_run_failure", start=True)
            yield topology
        finally:
            stop_processes(list(topology.processes.values()))
            topology.api.close()
            warehouse_engine(warehouse_url).dispose()

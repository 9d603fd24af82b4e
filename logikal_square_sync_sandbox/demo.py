"""The whole system on the embedded default, for a first look.

    python -m logikal_square_sync_sandbox.demo

Starts the sandbox Square and LogiKal servers, then Dagster (`dg dev`:
webserver, daemon and a code server for the location `logikal_square_sync`
named in pyproject.toml; SQLite storage in .data/dagster_home, SQLite
warehouse in .data), and
submits runs through the run queue that materialize every asset — every
LogiKal project partition included — so the UI shows the asset graph filled
in. Ctrl-C stops everything. `--exit-when-done` stops after the runs instead
and exits non-zero if any failed (a smoke test for scripts). `--api` also starts the ERP's
HTTP API (docs/api.md) on 127.0.0.1:8080 (`--api-port`), with the token of LSS_API_TOKENS or
a new one written to api-token in the data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from logikal_square_sync.logikal.assets import DIRECTORIES_KEY, PROJECTS_KEY
from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB as PROJECT_JOB
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME as PROJECT_PARTITIONS
from logikal_square_sync.square.assets import (
    square_catalog,
    square_inventory,
    square_locations,
    square_orders,
)

ROOT = Path(__file__).resolve().parent.parent
# The first run: every unpartitioned asset (the keys as the definitions name them, never retyped).
UNPARTITIONED_ASSETS = [
    asset.key.path for asset in (square_locations, square_catalog, square_orders, square_inventory)
] + [DIRECTORIES_KEY.path, PROJECTS_KEY.path]


def write_local_instance_yaml(dagster_home: Path) -> Path:
    """$DAGSTER_HOME/dagster.yaml for one machine: the project's dagster.yaml without its `storage`.

    The repository's dagster.yaml is the production instance (PostgreSQL storage from
    DAGSTER_PG_*); without a `storage` section Dagster keeps runs, events and schedules in
    SQLite files in DAGSTER_HOME. Run queue, pools and run monitoring stay exactly as there.
    """
    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    settings.pop("storage", None)
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    header = "# Written by logikal_square_sync_sandbox.demo from the project's dagster.yaml, minus storage.\n"
    target.write_text(header + yaml.safe_dump(settings, sort_keys=False))
    return target


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _start_sandbox(env: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """The sandbox on the README's ports 8701/8702 when free, else (or when another process takes
    one between our check and its bind) on ports the system picks."""
    preferred = ["--square-port", "8701", "--logikal-port", "8702"]
    if _port_free(8701) and _port_free(8702):
        started = _run_sandbox(env, log_dir, preferred)
        if started is not None:
            return started
    started = _run_sandbox(env, log_dir, ["--square-port", "0", "--logikal-port", "0"])
    if started is None:
        raise SystemExit(f"the sandbox did not start; see {log_dir / 'sandbox.log'}")
    return started


def _run_sandbox(
    env: dict[str, str], log_dir: Path, ports: list[str]
) -> tuple[subprocess.Popen, dict[str, str]] | None:
    process = subprocess.Popen(
        [sys.executable, "-m", "logikal_square_sync_sandbox", *ports],
        stdout=subprocess.PIPE,
        stderr=(log_dir / "sandbox.log").open("w"),
        text=True,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY "):
        process.wait(timeout=30)
        return None
    return process, json.loads(line.removeprefix("READY "))


def _wait_for_webserver(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("dg dev exited during start-up; see dagster.log in the data folder")
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"the Dagster webserver at {url} did not answer within {timeout:.0f}s")


def _wait_for_runs(client, run_ids: list[str], timeout: float = 900) -> dict[str, str]:
    from dagster import DagsterRunStatus

    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            status = client.get_run_status(run_id)
            if status in finished:
                statuses[run_id] = status.value
                pending.remove(run_id)
        time.sleep(1)
    statuses.update({run_id: "TIMED OUT" for run_id in pending})
    return statuses


def _materialize_everything(port: int) -> bool:
    """Submits the runs through GraphQL (the run queue, like the UI's buttons); True if all succeeded."""
    from dagster import DagsterInstance
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
    first = client.submit_job_execution("__ASSET_JOB", asset_selection=UNPARTITIONED_ASSETS)
    print(f"  submitted run {first}: Square assets, LogiKal directories and projects", flush=True)
    statuses = _wait_for_runs(client, [first])

    with DagsterInstance.get() as instance:
        projects = instance.get_dynamic_partitions(PROJECT_PARTITIONS)
    project_runs = [
        client.submit_job_execution(PROJECT_JOB, tags={"dagster/partition": project}) for project in projects
    ]
    print(f"  submitted {len(project_runs)} {PROJECT_JOB} runs, one per LogiKal project", flush=True)
    statuses.update(_wait_for_runs(client, project_runs))
    failed = {run_id: status for run_id, status in statuses.items() if status != "SUCCESS"}
    for run_id, status in failed.items():
        print(f"  run {run_id}: {status}", flush=True)
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m logikal_square_sync_sandbox.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="Dagster webserver port")
    parser.add_argument("--no-materialize", action="store_true", help="start everything, submit no runs")
    parser.add_argument(
        "--exit-when-done", action="store_true", help="stop after the runs; exit 1 if any failed"
    )
    parser.add_argument(
        "--data-dir", default=str(ROOT / ".data"), help="warehouse, Dagster storage and logs (default .data)"
    )
    parser.add_argument("--api", action="store_true", help="also start the ERP's HTTP API (docs/api.md)")
    parser.add_argument("--api-port", type=int, default=8080, help="the API's port (default 8080)")
    args = parser.parse_args(argv)

    data = Path(args.data_dir).resolve()
    dagster_home = data / "dagster_home"
    write_local_instance_yaml(dagster_home)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "LSS_DATA_DIR": str(data)}
    os.environ.update(DAGSTER_HOME=env["DAGSTER_HOME"], LSS_DATA_DIR=env["LSS_DATA_DIR"])

    children: list[subprocess.Popen] = []
    try:
        sandbox, urls = _start_sandbox(env, data)
        children.append(sandbox)
        square_url, logikal_url = urls["square_base_url"], urls["logikal_base_url"]
        print(f"Sandbox Square at {square_url}, LogiKal at {logikal_url}", flush=True)
        env.update(
            SQUARE_BASE_URL=urls["square_base_url"],
            SQUARE_ACCESS_TOKEN=urls["square_access_token"],
            LOGIKAL_BASE_URL=urls["logikal_base_url"],
            LOGIKAL_USERNAME=urls["logikal_username"],
            LOGIKAL_PASSWORD=urls["logikal_password"],
            # The sandbox serves plain http on loopback; a real server needs https (README).
            LOGIKAL_ALLOW_HTTP="true",
        )
        webserver_url = f"http://127.0.0.1:{args.port}"
        dagster = subprocess.Popen(
            [
                # dg, beside this interpreter: pyproject.toml's [tool.dg] names the module and the
                # location (workspace.yaml is the production one, pointing at a separate code server).
                str(Path(sys.executable).with_name("dg")),
                "dev",
                "-h",
                "127.0.0.1",
                "-p",
                str(args.port),
            ],
            cwd=ROOT,
            env=env,
            stdout=(data / "dagster.log").open("w"),
            stderr=subprocess.STDOUT,
            # Its own process group, so Ctrl-C reaches it once, through us, and _stop can
            # end its webserver, daemon and code servers together.
            start_new_session=True,
        )
        children.append(dagster)
        print(f"Starting Dagster (webserver + daemon); log in {data / 'dagster.log'} ...", flush=True)
        _wait_for_webserver(webserver_url, dagster)
        print(f"Dagster UI: {webserver_url}  (asset graph: {webserver_url}/asset-groups)", flush=True)
        if args.api:
            children.append(_start_api(env, data, webserver_url, args.api_port))

        ok = True
        if not args.no_materialize:
            print("Materializing every asset through the run queue ...", flush=True)
            ok = _materialize_everything(args.port)
            print("All assets materialized." if ok else "Some runs failed: see the Runs page.", flush=True)
        if args.exit_when_done:
            return 0 if ok else 1
        print("Press Ctrl-C to stop.", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


def _start_api(env: dict[str, str], data: Path, webserver_url: str, port: int) -> subprocess.Popen:
    """The `api` role against this demo; its token is never printed, only where it is."""
    token_file = data / "api-token"
    token = env.get("LSS_API_TOKENS", "").strip()
    if not token:
        token = secrets.token_urlsafe(24)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    api_env = {
        **env,
        "LSS_API_TOKENS": token,
        "LSS_API_PORT": str(port),
        "DAGSTER_WEBSERVER_URL": webserver_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "logikal_square_sync.interfaces.api"],
        cwd=ROOT,
        env=api_env,
        stdout=(data / "api.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    where = "LSS_API_TOKENS" if env.get("LSS_API_TOKENS", "").strip() else token_file
    print(f"ERP API: http://127.0.0.1:{port}/api/v1/ (token: {where}; log {data / 'api.log'})", flush=True)
    return process


def _stop(children: list[subprocess.Popen]) -> None:
    """SIGTERM each child's process group, then SIGKILL what is left after 30 s.

    SIGTERM, not SIGINT: a shell's background job ignores SIGINT, and its
    children inherit that. Each child leads its own process group, so the
    webserver, daemon and code servers under `dg dev` go with it.
    """
    for child in reversed(children):
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


if __name__ == "__main__":
    sys.exit(main())

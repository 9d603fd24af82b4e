"""Benchmark: a LogiKal force sync end to end, through a running Dagster, against the 10 s target.

    python -W ignore -m logikal_square_sync_tests.benchmarks.force_sync_end_to_end [--repeat 5]
        [--no-bank] [--time-scale 1.0] [--changed-only] [--phases 6,6,5]

Starts what production runs, on one machine: the LogiKal sandbox (in this process), Dagster
(`dg dev`: webserver, daemon, code server) on SQLite storage in a temp DAGSTER_HOME with the
project's dagster.yaml (run queue, launcher, pools), and a SQLite warehouse. Discovery (the
directory and project runs) goes at time scale 0; then the LogiKal sandbox answers at
`--time-scale` (1.0: login 4.5-9 s, selects 0.6-0.8 s, parts lists 1-3 s) and each repetition
force-syncs the 17-elevation project (6 + 6 + 5 elevations; `--phases` for another) the way
`lss-force-sync --wait` does (`interfaces/force_sync/`: resolve, submit through GraphQL, poll),
every parts list fetched again (`--refetch-parts-lists`; `--changed-only` syncs the unchanged
project instead).

The session bank (`logikal/session_bank.py`, policies.yaml `logikal.sessions.bank`) runs in
this process as the `api` role would run it; before each repetition it is filled (a warm
bank, as between two force syncs). `--no-bank` measures without it.

Printed per repetition and as medians: the total from the command's start to the run's end
seen by the command, and its split:
- queue + launch: submit to the run's start in its worker (GraphQL, run queue, launcher,
  the worker's start-up and definitions load);
- LogiKal walk: the sync's own duration (`duration_seconds` of the materializations);
- the rest: the command's resolve and polling, the step's set-up and the run's end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg

from logikal_square_sync.interfaces.force_sync.command import submit, wait
from logikal_square_sync.interfaces.force_sync.graphql import FINISHED, DagsterApi
from logikal_square_sync.interfaces.force_sync.projects import resolve_project
from logikal_square_sync.logikal.engine.client.session import ConnectionSettings
from logikal_square_sync.logikal.engine.client.session_bank import SessionBank, TokenShelf
from logikal_square_sync.logikal.session_bank import DagsterBankSlots, bank_policy, clear_dead_bank
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.demo import write_local_instance_yaml
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox, create_app
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_tests.benchmarks.logikal_force_sync import ONE_DIRECTORY, PHASE_SIZES, build_project

ROOT = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 10.0
POLL_SECONDS = 0.1  # the set-up's polling; the timed runs are followed as the command follows them


@dataclass
class Repetition:
    total: float
    queue_and_launch: float
    walk: float
    logins: int

    @property
    def rest(self) -> float:
        return self.total - self.queue_and_launch - self.walk


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _dagster(env: dict[str, str], log: Path) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dg")), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        api = DagsterApi(url, timeout=5)
        deadline = time.monotonic() + 300
        while True:
            try:
                api.repository_of("logikal_project_sync", wait_seconds=5)
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"Dagster did not start; see {log}") from None
                time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def _wait(api: DagsterApi, run_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.status(run_id)
        if status in FINISHED:
            return status
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"run {run_id} did not end within {timeout:.0f} s")


def _discover(api: DagsterApi) -> None:
    repository = api.repository_of("__ASSET_JOB")
    query = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {
        "selector": {
            **repository,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ["logikal", "directories"]}, {"path": ["logikal", "projects"]}],
        },
    }
    answer = api.query(query, {"p": params})["launchPipelineExecution"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"discovery refused: {answer}")
    status = _wait(api, answer["run"]["runId"])
    if status != "SUCCESS":
        raise SystemExit(f"discovery run ended {status}")


def _split(instance: dg.DagsterInstance, run_id: str, submitted_at: float) -> tuple[float, float, int]:
    """Queue + launch (submit to the run's start), the walk's own seconds, and the walk's logins."""
    record = instance.get_run_record_by_id(run_id)
    assert record is not None and record.start_time is not None
    walk, logins = 0.0, 0
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        assert materialization is not None
        metadata = materialization.metadata
        if "duration_seconds" in metadata:
            walk = max(walk, float(metadata["duration_seconds"].value))  # type: ignore[arg-type]
            logins = int(metadata["logins"].value)  # type: ignore[arg-type]
    return record.start_time - submitted_at, walk, logins


def _fill(bank: SessionBank | None) -> None:
    if bank is None:
        return
    for _ in range(10):
        bank.tick()
        if bank.held >= bank.target():
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--no-bank", action="store_true", help="no session bank: every session logs in")
    parser.add_argument("--changed-only", action="store_true", help="sync the unchanged project, no refetch")
    parser.add_argument(
        "--phases",
        type=lambda text: tuple(int(size) for size in text.split(",")),
        default=PHASE_SIZES,
        help="elevations per phase of the project (default 6,6,5: 17 elevations)",
    )
    args = parser.parse_args(argv)

    data = Path(tempfile.mkdtemp(prefix="lss-e2e-"))
    dagster_home = data / "dagster_home"
    write_local_instance_yaml(dagster_home)
    warehouse_url = f"sqlite:///{data}/warehouse.sqlite"
    sandbox = LogikalSandbox(
        replace(ONE_DIRECTORY, projects_per_directory=1, parts_list_target_bytes=900_000)
    )
    project_id = build_project(sandbox, args.phases)
    with serve_in_thread(create_app(sandbox)) as served:
        logikal_url = served.url + BASE_PATH
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "LSS_DATA_DIR": str(data),
            "WAREHOUSE_URL": warehouse_url,
            "LOGIKAL_BASE_URL": logikal_url,
            "LOGIKAL_USERNAME": sandbox.config.username,
            "LOGIKAL_PASSWORD": sandbox.config.password,
            "LOGIKAL_ALLOW_HTTP": "true",
            "SQUARE_BASE_URL": "http://127.0.0.1:9",
            "SQUARE_ACCESS_TOKEN": "unused-by-this-benchmark",
            "BACKGROUND_SYNC_ENABLED": "false",
        }
        os.environ.update(DAGSTER_HOME=env["DAGSTER_HOME"], WAREHOUSE_URL=warehouse_url)
        print(f"Starting Dagster in {data} ...", flush=True)
        with _dagster(env, data / "dagster.log") as url, dg.DagsterInstance.get() as instance:
            api = DagsterApi(url)
            _discover(api)
            engine = warehouse_engine(warehouse_url)
            project = resolve_project(engine, project_id)
            # A first sync at time scale 0: every repetition then does the same work.
            _wait(api, submit(api, project))
            settings = ConnectionSettings(logikal_url, sandbox.config.username, sandbox.config.password)
            bank = None
            if not args.no_bank:
                clear_dead_bank(engine, instance, settings)
                slots = DagsterBankSlots(instance, policies().logikal.sessions.budget)
                bank = SessionBank(settings, TokenShelf(engine), slots, bank_policy())
            sandbox.latency.time_scale = args.time_scale
            repetitions: list[Repetition] = []
            try:
                for number in range(1, args.repeat + 1):
                    _fill(bank)
                    started = time.monotonic()
                    wall_started = time.time()
                    project = resolve_project(engine, project_id)
                    submitted_at = time.time()
                    run_id = submit(api, project, refetch_parts_lists=not args.changed_only)
                    status = wait(api, run_id, timeout=600)  # the command's own polling
                    total = time.monotonic() - started
                    queue_and_launch, walk, logins = _split(instance, run_id, submitted_at)
                    queue_and_launch += submitted_at - wall_started
                    repetition = Repetition(total, queue_and_launch, walk, logins)
                    repetitions.append(repetition)
                    print(
                        f"  run {number} ({status}): total {total:.1f} s = queue + launch "
                        f"{queue_and_launch:.1f} s + LogiKal walk {walk:.1f} s ({logins} logins) "
                        f"+ rest {repetition.rest:.1f} s",
                        flush=True,
                    )
            finally:
                if bank is not None:
                    bank.close()
    _summary(repetitions, args)
    return 0


def _summary(repetitions: list[Repetition], args: argparse.Namespace) -> None:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    total = median([r.total for r in repetitions])
    what = "unchanged project" if args.changed_only else f"{sum(args.phases)} parts lists fetched"
    bank = "no session bank" if args.no_bank else f"session bank of {policies().logikal.sessions.bank.size}"
    print(
        f"Force sync end to end ({what}, time scale {args.time_scale}, {bank}), median of "
        f"{len(repetitions)}: total {total:.1f} s (target {TARGET_SECONDS:.0f} s: "
        f"{'met' if total <= TARGET_SECONDS else 'missed'}); queue + launch "
        f"{median([r.queue_and_launch for r in repetitions]):.1f} s, LogiKal walk "
        f"{median([r.walk for r in repetitions]):.1f} s, rest {median([r.rest for r in repetitions]):.1f} s; "
        f"logins per run {median([float(r.logins) for r in repetitions]):.0f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())

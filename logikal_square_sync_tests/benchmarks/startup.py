"""Benchmark: Dagster's start-up around `square/orders`, side by side with a trivial project's.

    python -m logikal_square_sync_tests.benchmarks.startup [--orders 2000] [--repeat 5]

Times, alternately in one run, `--repeat` times each:

- ours: `dagster asset materialize -m logikal_square_sync.definitions --select square/orders`
  (the asset and its completeness check, in the one run process), minus the asset's step
  as the run's event log records it;
- trivial: the same command for a one-asset code location with the in-process executor
  (`TRIVIAL_SOURCE`, written to a temporary folder), whole.

Each command gets an instance of the same kind: the project's dagster.yaml without storage
(SQLite in a temporary DAGSTER_HOME), its storage made before the timed commands, as a
production instance's exists. Our first run syncs the orders into an empty warehouse, the
later ones are incremental: only the step differs, and it is not counted.
Target: ours minus its step <= the trivial command + 0.5 s (medians; the minima, less
disturbed by other load on the machine, are printed too).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from logikal_square_sync_tests.benchmarks.square_full_sync import (
    child_of,
    report_child_result,
    sandbox,
    scratch_database,
    time_now,
)

TARGET_SECONDS = 0.5
ORDERS_STEP = "square__orders"
TRIVIAL_MODULE = "lss_trivial_code_location"
TRIVIAL_SOURCE = '''\
import dagster as dg


@dg.asset
def trivial() -> None:
    """Does nothing: the command's time is Dagster's start-up alone."""


defs = dg.Definitions(assets=[trivial], executor=dg.in_process_executor)
'''


@contextmanager
def dagster_home(env: dict[str, str]) -> Iterator[tuple[dict[str, str], float]]:
    """A temporary DAGSTER_HOME with the project's instance settings and its storage already made.

    Yields the environment for the commands and the seconds making the storage took.
    """
    from logikal_square_sync_sandbox.demo import write_local_instance_yaml

    with tempfile.TemporaryDirectory(prefix="lss-bench-home-") as home:
        write_local_instance_yaml(Path(home))
        env = {**env, "DAGSTER_HOME": home}
        # A new SQLite instance's tables are made by the first process that opens it.
        started = time_now()
        subprocess.run(
            [sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().get_runs(limit=1)"],
            env=env,
            check=True,
        )
        yield env, time_now() - started


def project_env(url: str, token: str, warehouse: str) -> dict[str, str]:
    """The environment our command runs in: this warehouse and sandbox, background syncing off."""
    return {
        **os.environ,
        "WAREHOUSE_URL": warehouse,
        "SQUARE_BASE_URL": url,
        "SQUARE_ACCESS_TOKEN": token,
        "BACKGROUND_SYNC_ENABLED": "false",
    }


def materialize(env: dict[str, str], module: str, select: str) -> dict[str, Any]:
    """Runs `dagster asset materialize -m module --select select`; its time, its run's and its steps'."""
    import dagster as dg

    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    # CPU as well as wall time: on a loaded machine the command's CPU varies far less.
    cpu_before = _children_cpu()
    started = time_now()
    done = subprocess.run(
        [dagster, "asset", "materialize", "-m", module, "--select", select],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time_now() - started
    cpu_seconds = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"dagster asset materialize -m {module} failed:\n{done.stderr[-3000:]}")
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_runs(limit=1)
        events = list(instance.all_logs(run.run_id))
    kinds = dg.DagsterEventType
    step_times: dict[str, dict[str, float]] = {}
    run_times: dict[str, float] = {}
    checks = 0
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if entry.step_key and event.event_type in (kinds.STEP_START, kinds.STEP_SUCCESS):
            step_times.setdefault(entry.step_key, {})[event.event_type.name] = entry.timestamp
        if event.event_type in (kinds.RUN_START, kinds.RUN_SUCCESS):
            run_times[event.event_type.name] = entry.timestamp
        checks += event.event_type == kinds.ASSET_CHECK_EVALUATION
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "run_seconds": run_times["RUN_SUCCESS"] - run_times["RUN_START"],
        "steps": {key: t["STEP_SUCCESS"] - t["STEP_START"] for key, t in step_times.items() if len(t) == 2},
        "checks": checks,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def trivial_commands(repeat: int) -> list[dict[str, Any]]:
    """The trivial project's command, `repeat` times, on an instance of the same kind as ours."""
    with tempfile.TemporaryDirectory(prefix="lss-bench-trivial-") as folder:
        (Path(folder) / f"{TRIVIAL_MODULE}.py").write_text(TRIVIAL_SOURCE)
        with dagster_home({**os.environ, "PYTHONPATH": folder}) as (env, _):
            return [materialize(env, TRIVIAL_MODULE, "trivial") for _ in range(repeat)]


def compare(ours: list[dict[str, Any]], trivial: list[dict[str, Any]]) -> dict[str, Any]:
    """Prints ours minus its step against the trivial command, and returns the figures."""
    overhead = [run["seconds"] - run["steps"][ORDERS_STEP] for run in ours]
    trivial_seconds = [run["seconds"] for run in trivial]
    median = statistics.median(overhead) - statistics.median(trivial_seconds)
    least = min(overhead) - min(trivial_seconds)
    print(f"  ours - its step             : {_figures(overhead)}")
    print(f"  trivial project's command   : {_figures(trivial_seconds)}")
    print(
        f"  difference                  : {median:8.2f} s median, {least:.2f} s minima   "
        f"(target <= {TARGET_SECONDS} s)  {'OK' if median <= TARGET_SECONDS else 'MISSED'}"
    )
    return {"ours_minus_step": overhead, "trivial": trivial_seconds, "median_difference": median}


def _figures(seconds: list[float]) -> str:
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    return f"{statistics.median(seconds):8.2f} s median, min {min(seconds):.2f} s  ({runs})"


def step_startup(url: str, token: str, warehouse: str) -> dict[str, Any]:
    """Ours and the trivial command alternately, `LSS_BENCH_REPEAT` times each."""
    from logikal_square_sync.square.engine.client import SquareClient
    from logikal_square_sync.square.engine.location_sync import sync_locations
    from logikal_square_sync.warehouse.connections import warehouse_engine

    repeat = int(os.environ["LSS_BENCH_REPEAT"])
    with SquareClient(url, token, timeout=120) as client:
        sync_locations(client, warehouse_engine(warehouse))
    ours: list[dict[str, Any]] = []
    trivial: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lss-bench-trivial-") as folder:
        (Path(folder) / f"{TRIVIAL_MODULE}.py").write_text(TRIVIAL_SOURCE)
        trivial_env = {**os.environ, "PYTHONPATH": folder}
        with (
            dagster_home(project_env(url, token, warehouse)) as (env, _),
            dagster_home(trivial_env) as (other_env, _),
        ):
            for _ in range(repeat):
                ours.append(materialize(env, "logikal_square_sync.definitions", "square/orders"))
                trivial.append(materialize(other_env, TRIVIAL_MODULE, "trivial"))
    return {"ours": ours, "trivial": trivial}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        url, token, warehouse = sys.argv[3:6]
        report_child_result(step_startup(url, token, warehouse))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"dagster asset materialize --select square/orders ({args.orders:,} orders) against a trivial "
        f"one-asset project, alternately, {args.repeat} times each"
    )
    os.environ["LSS_BENCH_REPEAT"] = str(args.repeat)
    with sandbox(args.orders) as (state, url), scratch_database() as warehouse:
        figures = child_of(__spec__.name, "startup", url, state.config.access_token, warehouse)
    for ours, trivial in zip(figures["ours"], figures["trivial"], strict=True):
        print(
            f"  ours: {ours['seconds']:.2f} s (CPU {ours['cpu_seconds']:.2f} s, step included), asset step "
            f"{ours['steps'][ORDERS_STEP]:.2f} s, {ours['checks']} check(s) "
            f"{sum(t for key, t in ours['steps'].items() if key != ORDERS_STEP):.2f} s; trivial: "
            f"{trivial['seconds']:.2f} s (CPU {trivial['cpu_seconds']:.2f} s)"
        )
    compare(figures["ours"], figures["trivial"])


if __name__ == "__main__":
    main()

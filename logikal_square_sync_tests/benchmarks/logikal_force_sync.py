"""Benchmark: force sync of one 17-elevation, 3-phase LogiKal project at real latencies.

    python -m logikal_square_sync_tests.benchmarks.logikal_force_sync [--pool-size 3] [--repeat 3]

The sandbox LogiKal server runs in this process with the latency model of
docs/logikal-api.md §4 at time scale 1.0 (login 4.5-9 s, project select
~0.7 s, parts list 1-3 s, ~1 MB files). The project gets 6 + 6 + 5
elevations; directories and projects are discovered first at time scale 0,
so only the project sync is timed (`sync_project_contents`, what a
`logikal_project_sync` run executes).

Printed per repetition, and summarised:
- first sync: wall time, logins, API calls, max concurrent sessions;
- the bound: the calls the session rules force on any client for this
  project (a login per phase with parts lists, ...; `planner.minimal_calls`)
  spread perfectly over the sessions that can work at once (more logins than
  the rules force are allowed if they pay: `planner.lower_bound_seconds`), at
  the model's mean latency per call (no client beats it on average), and, for
  reference, at its minimum latency;
- ratio wall / bound (target <= 1.25) and wall (target <= 30 s);
- a re-sync of the unchanged project: logins and calls (target: one login
  plus the listing calls), and its wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter

from logikal_square_sync.logikal.client import ConnectionSettings
from logikal_square_sync.logikal.planner import lower_bound_seconds, minimal_calls
from logikal_square_sync.logikal.pool import SessionPool
from logikal_square_sync.logikal.sync_directories import sync_directories
from logikal_square_sync.logikal.sync_project import sync_project_contents
from logikal_square_sync.logikal.sync_projects import sync_projects
from logikal_square_sync.sandbox.logikal import BASE_PATH, LogikalSandbox, LogikalSandboxConfig, create_app
from logikal_square_sync.sandbox.server import serve_in_thread
from logikal_square_sync.warehouse.engine import warehouse_engine

PHASE_SIZES = (6, 6, 5)
LISTING_CALLS = {"POST /directories/select", "POST /projects/select", "GET /phases", "POST /phases/select"}
LISTING_CALLS |= {"GET /elevations"}


def _build_project(sandbox: LogikalSandbox) -> str:
    directory = sandbox.directories()[0]["path"]
    project_id = sandbox.add_project(directory, "BENCH17", phases=len(PHASE_SIZES), elevations_per_phase=0)
    for phase, size in zip(sandbox.phases(project_id), PHASE_SIZES, strict=True):
        for _ in range(size):
            sandbox.add_elevation(project_id, phase["id"])
    return project_id


def _run_once(pool_size: int, seed: int) -> dict[str, float]:
    sandbox = LogikalSandbox(
        LogikalSandboxConfig(
            seed=seed,
            root_directories=1,
            directory_depth=1,
            projects_per_directory=1,
            time_scale=0.0,
            parts_list_target_bytes=900_000,
        )
    )
    project_id = _build_project(sandbox)
    engine = warehouse_engine(f"sqlite:///{tempfile.mkdtemp(prefix='logikal-bench-')}/warehouse.sqlite")
    with serve_in_thread(create_app(sandbox)) as served:
        settings = ConnectionSettings(served.url + BASE_PATH, "sandbox", "sandbox")
        with SessionPool(settings, pool_size) as pool:
            sync_directories(pool, engine)
        with SessionPool(settings, pool_size) as pool:
            sync_projects(pool, engine)

        sandbox.latency.time_scale = 1.0
        sandbox.reset_stats()
        started = time.monotonic()
        with SessionPool(settings, pool_size) as pool:
            first = sync_project_contents(pool, engine, project_id)
        wall = time.monotonic() - started
        stats = sandbox.stats
        assert first.parts_lists_fetched == sum(PHASE_SIZES), first

        sandbox.reset_stats()
        started = time.monotonic()
        with SessionPool(settings, pool_size) as pool:
            again = sync_project_contents(pool, engine, project_id)
        rewall = time.monotonic() - started
        restats = sandbox.stats
        assert again.parts_lists_fetched == 0, again

    required = minimal_calls(PHASE_SIZES)
    model = sandbox.latency
    bound = lower_bound_seconds(PHASE_SIZES, {label: model.mean(label) for label in required}, pool_size)
    optimistic = lower_bound_seconds(PHASE_SIZES, {label: model.low(label) for label in required}, pool_size)
    listing = sum(count for label, count in restats.calls.items() if label in LISTING_CALLS)
    return {
        "wall": wall,
        "logins": stats.logins,
        "calls": stats.total_calls(),
        "required_calls": sum(required.values()),
        "required_logins": required["POST /auth"],
        "max_sessions": stats.max_concurrent_sessions,
        "bound": bound,
        "optimistic_bound": optimistic,
        "ratio": wall / bound,
        "resync_wall": rewall,
        "resync_logins": restats.logins,
        "resync_calls": restats.total_calls(),
        "resync_listing_calls": listing,
        "resync_other": dict(Counter({k: v for k, v in restats.calls.items() if k not in LISTING_CALLS})),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pool-size", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="runs with different latency draws")
    args = parser.parse_args(argv)

    runs = []
    for index in range(args.repeat):
        run = _run_once(args.pool_size, seed=11 + index)
        runs.append(run)
        print(
            f"run {index + 1}: first sync {run['wall']:.1f} s, {run['logins']} logins, {run['calls']} calls "
            f"(rules force {run['required_logins']} logins, {run['required_calls']} calls), "
            f"max {run['max_sessions']} sessions; bound {run['bound']:.1f} s (at minimum latencies "
            f"{run['optimistic_bound']:.1f} s); ratio {run['ratio']:.2f}. "
            f"Re-sync {run['resync_wall']:.1f} s: {run['resync_logins']} login, {run['resync_calls']} calls "
            f"= {run['resync_listing_calls']} listing + {run['resync_other']}",
            flush=True,
        )
    walls = [run["wall"] for run in runs]
    ratios = [run["ratio"] for run in runs]
    worst_ratio, worst_wall = max(ratios), max(walls)
    resync_ok = all(run["resync_logins"] <= 1 for run in runs)
    print(
        f"\nforce sync of 17 elevations in 3 phases, pool size {args.pool_size}, {args.repeat} run(s): "
        f"wall median {statistics.median(walls):.1f} s (max {worst_wall:.1f} s, target <= 30 s); "
        f"bound {runs[0]['bound']:.1f} s; ratio median {statistics.median(ratios):.2f} "
        f"(max {worst_ratio:.2f}, target <= 1.25); re-sync {runs[0]['resync_logins']} login + "
        f"{runs[0]['resync_listing_calls']} listing calls + logout"
    )
    return 0 if worst_wall <= 30 and worst_ratio <= 1.25 and resync_ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Force sync of one LogiKal project through Dagster's run queue.

    lss-force-sync --project "DOS22309" [--wait]
    lss-force-sync --project 5ddb1393-56eb-4280-9f7e-3c3aec51483c --wait
    python -m logikal_square_sync.interfaces.force_sync ...   (the same command)
    python -m logikal_square_sync.interfaces.force_sync ...

The project is named by GUID or by name; names are looked up in the
warehouse's `logikal_projects` (an unknown or ambiguous name is an error that
lists what it found). The command then submits job `logikal_project_sync`
for that project's partition through the Dagster webserver's GraphQL API —
the same queue the UI's materialize button uses, so it never overlaps another
sync of the project — and with `--wait` follows the run and prints its outcome.

Environment: `DAGSTER_WEBSERVER_URL` (default http://localhost:3000) and
`WAREHOUSE_URL` (default: the local SQLite warehouse). The warehouse URL may
carry a password, so it is read from the environment only (never from the
command line, where `ps` shows it) and never printed. Exit codes: 0 submitted
(or, with --wait, succeeded); 1 the run failed or was canceled; 2 the project
could not be resolved; 3 Dagster could not be reached or refused; 4 --wait
gave up while the run goes on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from logikal_square_sync.interfaces.force_sync.graphql import (
    DEFAULT_DAGSTER_URL,
    FINISHED,
    DagsterApi,
    ForceSyncError,
)
from logikal_square_sync.interfaces.force_sync.projects import ProjectRef, resolve_project
from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync.warehouse.location import WarehouseNotConfigured, warehouse_url_from_env

STILL_RUNNING = 4


def submit(api: DagsterApi, project: ProjectRef, *, refetch_parts_lists: bool = False) -> str:
    repository = api.repository_of(PROJECT_SYNC_JOB)
    api.ensure_partition(repository, PROJECTS_PARTITIONS_NAME, project.id)
    run_config = (
        {"ops": {"logikal_project_contents": {"config": {"refetch_parts_lists": True}}}}
        if refetch_parts_lists
        else {}
    )
    tags = {"dagster/partition": project.id, "logikal/sync_reason": "force_sync"}
    return api.launch(repository, PROJECT_SYNC_JOB, tags, run_config)


def wait(
    api: DagsterApi, run_id: str, timeout: float, poll: float = 0.25, heartbeat: float = 30.0
) -> str | None:
    """The run's final status, printing each change (and a line every `heartbeat` s); None on timeout.

    Polled every quarter second: the end of a run of a few seconds is seen at once, for one
    small GraphQL read each time."""
    started = time.monotonic()
    last, last_line = None, started
    while time.monotonic() - started < timeout:
        status = api.status(run_id)
        now = time.monotonic()
        if status != last or now - last_line >= heartbeat:
            print(f"  {status} after {now - started:.0f} s", flush=True)
            last, last_line = status, now
        if status in FINISHED:
            return status
        time.sleep(poll)
    return None


_SHOWN = (
    "rows_changed",
    "parts_lists_fetched",
    "parts_lists_skipped",
    "parts_lists_failed",
    "logins",
    "api_calls",
    "duration_seconds",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lss-force-sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--project",
        required=True,
        metavar="NAME_OR_GUID",
        help="the LogiKal project: its GUID, or its name as the warehouse knows it (case-insensitive)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the run, print its progress and outcome, exit with it"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        metavar="SECONDS",
        help="how long --wait follows the run (default 900); the run itself goes on after that",
    )
    parser.add_argument(
        "--refetch-parts-lists",
        action="store_true",
        help="fetch every parts list again, changed or not (normally only new or changed ones)",
    )
    parser.add_argument(
        "--dagster-url",
        default=os.environ.get("DAGSTER_WEBSERVER_URL", DEFAULT_DAGSTER_URL),
        metavar="URL",
        help=f"the Dagster webserver (default: $DAGSTER_WEBSERVER_URL or {DEFAULT_DAGSTER_URL})",
    )
    args = parser.parse_args(argv)

    api = DagsterApi(args.dagster_url)
    try:
        project = resolve_project(warehouse_engine(warehouse_url_from_env()), args.project)
        run_id = submit(api, project, refetch_parts_lists=args.refetch_parts_lists)
        link = f"{api.url}/runs/{run_id}"
        print(f"Submitted force sync of LogiKal project {project.describe()}: run {run_id}", flush=True)
        print(f"  {link}", flush=True)
        if not args.wait:
            return 0
        started = time.monotonic()
        status = wait(api, run_id, args.timeout)
        if status is None:
            print(
                f"Run {run_id} is still going after {args.timeout:.0f} s; it goes on in Dagster. "
                f"Follow it at {link} (or in the UI under Runs).",
                flush=True,
            )
            return STILL_RUNNING
        metadata, errors = api.outcome(run_id)
        print(f"Run {run_id}: {status} after {time.monotonic() - started:.1f} s", flush=True)
        for asset, values in sorted(metadata.items()):
            shown = ", ".join(f"{key}={values[key]}" for key in _SHOWN if key in values)
            print(f"  {asset}: {shown}")
        for error in errors:
            print(f"  error: {error}")
        return 0 if status == "SUCCESS" else 1
    except ForceSyncError as error:
        print(f"force sync: {error}", file=sys.stderr)
        return error.exit_code
    except WarehouseNotConfigured as error:
        print(f"force sync: {error}", file=sys.stderr)
        return 2
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())

"""Force sync of one LogiKal project through Dagster's run queue.

    lss-force-sync --project "DOS22309" [--wait]
    lss-force-sync --project 5ddb1393-56eb-4280-9f7e-3c3aec51483c --wait
    python -m logikal_square_sync.force_sync ...   (the same command)

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
import difflib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.warehouse.engine import warehouse_engine
from logikal_square_sync.warehouse.location import WarehouseNotConfigured, warehouse_url_from_env
from logikal_square_sync.warehouse.tables import logikal_projects

DEFAULT_DAGSTER_URL = "http://localhost:3000"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
STILL_RUNNING = 4


class ForceSyncError(RuntimeError):
    exit_code = 3


class ProjectLookupError(ForceSyncError):
    exit_code = 2


# -- which project ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectRef:
    id: str
    name: str
    directory_path: str
    job_number: str | None

    def describe(self) -> str:
        job = f", job {self.job_number}" if self.job_number else ""
        return f"{self.name} ({self.id}, in '{self.directory_path}'{job})"


def describe_warehouse(url: sa.URL | str) -> str:
    """Where a warehouse is, for messages: never its password, user or query (they may hold secrets)."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return f"the SQLite warehouse {url.database}"
    where = f"{url.host or 'localhost'}" + (f":{url.port}" if url.port else "")
    return f"the {url.get_backend_name()} warehouse database {url.database!r} on {where}"


def resolve_project(engine: sa.Engine, text: str) -> ProjectRef:
    """A live project by GUID, exact name, or case-insensitive name; else a clear error."""
    p = logikal_projects.c
    columns = (p.id, p.name, p.directory_path, p.job_number)
    text = text.strip()
    if not text:
        raise ProjectLookupError("no project given: pass --project NAME_OR_GUID")
    with engine.connect() as conn:
        try:
            guid = str(uuid.UUID(text))
        except ValueError:
            guid = None
        if guid is not None:
            row = conn.execute(sa.select(*columns, p.deleted_at).where(p.id == guid)).one_or_none()
            if row is None:
                raise ProjectLookupError(
                    f"no LogiKal project {guid} in {describe_warehouse(engine.url)}; if it is new, "
                    "materialize logikal/projects first (it runs every 30 minutes)"
                )
            if row.deleted_at is not None:
                raise ProjectLookupError(f"LogiKal project {row.name} ({guid}) was deleted at the source")
            return ProjectRef(*row[:4])
        live = sa.select(*columns).where(p.deleted_at.is_(None))
        rows = conn.execute(live.where(p.name == text)).all()
        if not rows:
            rows = conn.execute(live.where(sa.func.lower(p.name) == text.lower())).all()
        if len(rows) == 1:
            return ProjectRef(*rows[0])
        if len(rows) > 1:
            found = "; ".join(ProjectRef(*row).describe() for row in rows)
            raise ProjectLookupError(
                f"{len(rows)} LogiKal projects are named {text!r}: {found}. Pass the GUID instead."
            )
        names = list(conn.execute(sa.select(p.name).where(p.deleted_at.is_(None))).scalars())
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ProjectLookupError(
        f"no LogiKal project named {text!r} in {describe_warehouse(engine.url)}.{hint} A project created "
        "in LogiKal in the last half hour appears after the next logikal/projects run; a wrong warehouse "
        "means WAREHOUSE_URL is not the one the code location uses."
    )


# -- Dagster's GraphQL API -------------------------------------------------------------------

REPOSITORIES_QUERY = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } pipelines { name } } }
    ... on PythonError { message }
  }
}
"""

ADD_PARTITION_MUTATION = """
mutation AddPartition(
  $repositorySelector: RepositorySelector!, $partitionsDefName: String!, $partitionKey: String!
) {
  addDynamicPartition(
    repositorySelector: $repositorySelector
    partitionsDefName: $partitionsDefName
    partitionKey: $partitionKey
  ) {
    __typename
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""

# What an ERP button sends, too (docs/logikal.md).
LAUNCH_MUTATION = """
mutation ForceSync($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query RunOutcome($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries {
            label
            ... on IntMetadataEntry { intValue }
            ... on FloatMetadataEntry { floatValue }
            ... on TextMetadataEntry { text }
          }
        }
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
  }
}
"""


class DagsterApi:
    """The few GraphQL calls a force sync needs, over plain HTTP (what an ERP would do, too)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._http.post(
                f"{self.url}/graphql", json={"query": document, "variables": variables or {}}
            )
        except httpx.HTTPError as error:
            raise ForceSyncError(f"cannot reach the Dagster webserver at {self.url}: {error}") from None
        if response.status_code != 200:
            raise ForceSyncError(
                f"Dagster at {self.url} answered {response.status_code}: {response.text[:300]}"
            )
        body = response.json()
        if body.get("errors"):
            raise ForceSyncError(f"Dagster GraphQL error: {body['errors'][0].get('message')}")
        return body["data"]

    def repository_of(self, job: str, wait_seconds: float = 60.0) -> dict[str, str]:
        """The code location serving `job`; waits a little for one that is still loading (after a deploy)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            result = self.query(REPOSITORIES_QUERY)["repositoriesOrError"]
            if result["__typename"] != "RepositoryConnection":
                raise ForceSyncError(f"Dagster cannot list its code locations: {result.get('message')}")
            matches = [
                {"repositoryLocationName": node["location"]["name"], "repositoryName": node["name"]}
                for node in result["nodes"]
                if any(pipeline["name"] == job for pipeline in node["pipelines"])
            ]
            if len(matches) == 1:
                return matches[0]
            if matches or time.monotonic() > deadline:
                raise ForceSyncError(
                    f"expected one code location with job {job} at {self.url}, found {len(matches)}"
                )
            time.sleep(1.0)

    def ensure_partition(self, repository: dict[str, str], partitions: str, key: str) -> None:
        variables = {"repositorySelector": repository, "partitionsDefName": partitions, "partitionKey": key}
        result = self.query(ADD_PARTITION_MUTATION, variables)["addDynamicPartition"]
        if result["__typename"] not in {"AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"}:
            raise ForceSyncError(f"cannot add partition {key} to {partitions}: {result.get('message')}")

    def launch(self, repository: dict[str, str], job: str, tags: dict[str, str], run_config: dict) -> str:
        params = {
            "selector": {**repository, "jobName": job},
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
        }
        result = self.query(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
            raise ForceSyncError(f"Dagster refused the run ({result['__typename']}): {detail}")
        return result["run"]["runId"]

    def status(self, run_id: str) -> str:
        result = self.query(RUN_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise ForceSyncError(f"run {run_id}: {result.get('message')}")
        return result["status"]

    def outcome(self, run_id: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Materialization metadata by asset, and error messages."""
        result = self.query(RUN_EVENTS_QUERY, {"runId": run_id})["logsForRun"]
        metadata: dict[str, dict[str, Any]] = {}
        errors: list[str] = []
        for event in result.get("events", []):
            kind = event["__typename"]
            if kind == "MaterializationEvent":
                values = {
                    entry["label"]: entry.get("intValue", entry.get("floatValue", entry.get("text")))
                    for entry in event["metadataEntries"]
                }
                metadata["/".join(event["assetKey"]["path"])] = values
            elif kind == "ExecutionStepFailureEvent":
                errors.append(f"{event['stepKey']}: {event['error']['message'].strip()}")
            elif kind == "RunFailureEvent" and not errors:
                errors.append(event["message"])
        return metadata, errors


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
    api: DagsterApi, run_id: str, timeout: float, poll: float = 1.0, heartbeat: float = 30.0
) -> str | None:
    """The run's final status, printing each change (and a line every `heartbeat` s); None on timeout."""
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

"""What the API asks Dagster, through the webserver's GraphQL (the force-sync command's client).

Dagster documents its GraphQL API as subject to change between versions: every query the API
sends is in this file, so an upgrade has one place to check (the API's tests run them all).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from logikal_square_sync.interfaces.force_sync import (
    FINISHED,
    DagsterApi,
    ForceSyncError,
    ProjectRef,
    submit,
)
from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB

PARTITION_TAG = "dagster/partition"
ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED"]

ACTIVE_RUNS_QUERY = """
query ActiveForceSync($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 1) {
    __typename
    ... on Runs { results { runId status } }
    ... on Error { message }
  }
}
"""

RUN_DETAILS_QUERY = """
query RunDetails($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status pipelineName creationTime startTime endTime
      tags { key value }
    }
    ... on Error { message }
  }
}
"""

HEALTH_QUERY = """
query Health {
  runsOrError(limit: 1) { __typename }
  instance {
    daemonHealth { allDaemonStatuses { daemonType required healthy } }
  }
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError { __typename }
      }
    }
  }
}
"""

STATUS_QUERY = """
query Freshness {
  assetNodes {
    assetKey { path }
    isPartitioned
    freshnessStatusInfo {
      freshnessStatus
      freshnessStatusMetadata { lastMaterializedTimestamp }
    }
    assetMaterializations(limit: 1) { timestamp }
    targetingInstigators {
      __typename
      ... on Schedule {
        name
        scheduleState { status }
        futureTicks(limit: 1) { results { timestamp } }
      }
    }
  }
}
"""

# Metadata of a finished run worth showing as its "rows" (what changed, what was fetched).
ROW_KEYS = (
    "rows_changed",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "parts_lists_fetched",
    "parts_lists_skipped",
    "parts_lists_failed",
)


@dataclass
class RunView:
    run_id: str
    dagster_status: str
    project_id: str | None
    duration_s: float | None
    finished: bool
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """SUCCESS only for a run that synced the whole project; FAILURE names why it did not.

        A run can succeed in Dagster and still leave parts lists unfetched (an elevation locked
        in LogiKal): the ERP asked for the project's data, so that is a FAILURE with the reason.
        """
        if not self.finished:
            return "QUEUED" if self.dagster_status in {"QUEUED", "NOT_STARTED"} else "STARTED"
        return "SUCCESS" if self.dagster_status == "SUCCESS" and not self.errors else "FAILURE"


class RunNotFound(LookupError):
    pass


class ApiDagster:
    """The force-sync GraphQL client plus the API's own reads; safe to share between requests."""

    def __init__(self, url: str, ui_url: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.ui_url = (ui_url or url).rstrip("/")
        self._timeout = timeout
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._local = threading.local()

    def _api(self) -> DagsterApi:
        # One httpx client per worker thread (the endpoints run in Starlette's thread pool).
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = DagsterApi(self.url, timeout=self._timeout)
        return api

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/{run_id}"

    def _project_lock(self, project_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[project_id]

    def active_run(self, project_id: str) -> str | None:
        """A queued or running force sync (or any sync) of this project's partition, if one exists."""
        run_filter = {
            "pipelineName": PROJECT_SYNC_JOB,
            "tags": [{"key": PARTITION_TAG, "value": project_id}],
            "statuses": ACTIVE,
        }
        result = self._api().query(ACTIVE_RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            raise ForceSyncError(f"Dagster cannot list runs: {result.get('message')}")
        return result["results"][0]["runId"] if result["results"] else None

    def force_sync(self, project: ProjectRef) -> tuple[str, bool]:
        """(run id, launched now): the project's queued or running sync, else a new run of it.

        The lock makes two clicks in this process one run: the second waits for the first's
        launch and then finds its run queued. (Dagster's queue would run two launches one
        after the other, never at once; the lock saves the second sync.)
        """
        with self._project_lock(project.id):
            existing = self.active_run(project.id)
            if existing is not None:
                return existing, False
            return submit(self._api(), project), True

    def run(self, run_id: str) -> RunView:
        result = self._api().query(RUN_DETAILS_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] == "RunNotFoundError":
            raise RunNotFound(run_id)
        if result["__typename"] != "Run":
            raise ForceSyncError(f"run {run_id}: {result.get('message')}")
        if result["pipelineName"] != PROJECT_SYNC_JOB:
            raise RunNotFound(run_id)  # the API shows force syncs only
        tags = {tag["key"]: tag["value"] for tag in result["tags"]}
        finished = result["status"] in FINISHED
        start = result.get("startTime")
        end = result.get("endTime") if finished else None
        duration = round((end or time.time()) - start, 1) if start else None
        view = RunView(run_id, result["status"], tags.get(PARTITION_TAG), duration, finished)
        if finished:
            metadata, errors = self._api().outcome(run_id)
            for asset, values in sorted(metadata.items()):
                view.rows[asset] = {key: values[key] for key in ROW_KEYS if isinstance(values.get(key), int)}
                if values.get("not_synced"):
                    view.errors.append(f"{asset}: not synced: {values['not_synced']}")
                if values.get("failures"):
                    view.errors.extend(
                        f"{asset}: {line.removeprefix('- ')}" for line in str(values["failures"]).splitlines()
                    )
                elif values.get("parts_lists_failed"):
                    view.errors.append(
                        f"{asset}: {values['parts_lists_failed']} parts list(s) left unfetched"
                    )
            view.errors.extend(errors)
        return view

    def wait(self, run_id: str, seconds: float, poll: float = 0.25) -> None:
        """Until the run ends or `seconds` pass (the request's ?wait=).

        A quarter second: a force sync takes seconds and the caller waits for its end, which a
        status query (one small GraphQL read) costs the webserver less than the wait would cost him.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._api().status(run_id) in FINISHED:
                return
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def health(self) -> dict[str, str]:
        """Each part's state ("ok" or what is wrong), never an address or a secret."""
        data = self._api().query(HEALTH_QUERY)
        parts: dict[str, str] = {}
        runs = data["runsOrError"]["__typename"]
        parts["storage"] = "ok" if runs == "Runs" else "Dagster cannot read its run storage"
        unhealthy = [
            d["daemonType"]
            for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
            if d["required"] and not d["healthy"]
        ]
        parts["daemon"] = (
            "ok" if not unhealthy else f"no recent heartbeat from: {', '.join(sorted(unhealthy))}"
        )
        workspace = data["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            parts["code_location"] = "Dagster cannot read its workspace"
        else:
            bad = [
                entry["name"]
                for entry in workspace["locationEntries"]
                if entry["loadStatus"] != "LOADED"
                or (entry["locationOrLoadError"] or {}).get("__typename") != "RepositoryLocation"
            ]
            if not workspace["locationEntries"]:
                parts["code_location"] = "no code location loaded"
            else:
                parts["code_location"] = "ok" if not bad else f"not loaded: {', '.join(bad)}"
        return parts

    def asset_status(self) -> list[dict[str, Any]]:
        nodes = self._api().query(STATUS_QUERY)["assetNodes"]
        assets = []
        for node in nodes:
            info = node.get("freshnessStatusInfo") or {}
            latest = node["assetMaterializations"]
            last = float(latest[0]["timestamp"]) / 1000 if latest else None
            ticks = [
                float(tick["timestamp"])
                for instigator in node["targetingInstigators"]
                if instigator["__typename"] == "Schedule"
                and instigator["scheduleState"]["status"] == "RUNNING"
                for tick in instigator["futureTicks"]["results"]
            ]
            assets.append(
                {
                    "asset": "/".join(node["assetKey"]["path"]),
                    "partitioned": node["isPartitioned"],
                    "last_successful_sync": last,
                    "freshness": info.get("freshnessStatus"),
                    "next_scheduled_run": min(ticks) if ticks else None,
                }
            )
        return sorted(assets, key=lambda a: a["asset"])

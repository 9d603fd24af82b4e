"""The few calls of the Dagster webserver's GraphQL API a force sync needs, over plain HTTP.

Plain HTTP rather than dagster_graphql's client: it is what an ERP would send, too, and the
HTTP API (logikal_square_sync.interfaces.api) reuses these calls.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

DEFAULT_DAGSTER_URL = "http://localhost:3000"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class ForceSyncError(RuntimeError):
    exit_code = 3


class DagsterUnreachable(ForceSyncError):
    """The webserver did not answer at all (connection refused, timeout)."""


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
        ... on MaterializationEvent { assetKey { path } metadataEntries { ...Entry } }
        ... on ObservationEvent { assetKey { path } metadataEntries { ...Entry } }
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
  }
}

fragment Entry on MetadataEntry {
  label
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue }
  ... on TextMetadataEntry { text }
  ... on MarkdownMetadataEntry { mdStr }
  ... on BoolMetadataEntry { boolValue }
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
            raise DagsterUnreachable(f"cannot reach the Dagster webserver at {self.url}: {error}") from None
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
            if kind in {"MaterializationEvent", "ObservationEvent"}:
                values = {entry["label"]: _value(entry) for entry in event["metadataEntries"]}
                metadata.setdefault("/".join(event["assetKey"]["path"]), {}).update(values)
            elif kind == "ExecutionStepFailureEvent":
                errors.append(f"{event['stepKey']}: {event['error']['message'].strip()}")
            elif kind == "RunFailureEvent" and not errors:
                errors.append(event["message"])
        return metadata, errors


def _value(entry: dict[str, Any]) -> Any:
    for kind in ("intValue", "floatValue", "text", "mdStr", "boolValue"):
        if kind in entry:
            return entry[kind]
    return None

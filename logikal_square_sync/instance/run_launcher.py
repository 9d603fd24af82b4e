"""The run launcher of dagster.yaml: Dagster's DefaultRunLauncher plus a worker health check.

Why it exists: under compose (and `dagster dev`) each run worker is a child process of the
code server. When the run worker alone dies, the code server sees it and fails the run. When
the code server itself dies (SIGKILL, OOM, its container or node going away) nobody is left
to tell: DefaultRunLauncher offers run monitoring no health check, so the run would stay
STARTED, holding its pool slots, until its maximum runtime (hours).

This launcher lets run monitoring (dagster.yaml `run_monitoring`, in the daemon) ask, for
each STARTED run, the code server named in the run's `.dagster/grpc_info` tag whether it
still runs it:

- it does: RUNNING;
- it answers but does not (it was restarted and never heard of the run): FAILED;
- it cannot be reached: RUNNING at first (a restarting container is down for a while), and
  FAILED once it has stayed unreachable for `unreachable_after_seconds`, so a server that
  never comes back still ends the run.

Run monitoring then marks a run with a FAILED worker as failed (`max_resume_run_attempts: 0`),
and `free_slots_after_run_end_seconds` gives its pool slots back.

One subtlety of `dagster code-server start`: a *reload* of the code location replaces the
gRPC process that answers, while runs it started go on in the old one, which only a cancel
request reaches (the code server routes cancels by run). So before calling a run dead, a
cancel request is sent: a restarted server knows nothing of the run and reports so (the run
is dead: FAILED); after a reload the old process accepts it, the run is marked CANCELING as
by a termination from the UI, and ends CANCELED once its step notices, instead of going on
unseen.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import dagster as dg
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import (
    CanCancelExecutionRequest,
    CanCancelExecutionResult,
    CancelExecutionRequest,
    CancelExecutionResult,
)
from dagster._serdes import ConfigurableClassData

# One question to a code server may not hold up run monitoring for long: it checks every
# STARTED run in turn, and an unreachable host otherwise costs gRPC's default of 60 s.
_QUESTION_TIMEOUT_SECONDS = 10


class HealthCheckedRunLauncher(dg.DefaultRunLauncher):
    """DefaultRunLauncher whose runs run monitoring can see die with their code server."""

    def __init__(
        self,
        unreachable_after_seconds: float,
        inst_data: ConfigurableClassData | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._unreachable_after_seconds = unreachable_after_seconds
        self._clock = clock
        # When this process first failed to reach the code server of a run, by run id. Kept in
        # memory: a restarted daemon starts counting again, which only delays the verdict.
        self._unreachable_since: dict[str, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def config_type(cls) -> dict[str, dg.Field]:
        return {"unreachable_after_seconds": dg.Field(dg.Float, is_required=True)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        return cls(unreachable_after_seconds=config_value["unreachable_after_seconds"], inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        grpc_info = run.tags.get(GRPC_INFO_TAG)
        if not grpc_info:
            # Not launched through a code server (or by another launcher): nothing to ask.
            # The run's maximum runtime still bounds it.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no code server recorded for this run")
        client = _client(json.loads(grpc_info))
        where = _address(client)
        try:
            asked = client.can_cancel_execution(
                CanCancelExecutionRequest(run_id=run.run_id), timeout=_QUESTION_TIMEOUT_SECONDS
            )
            if dg.deserialize_value(asked, CanCancelExecutionResult).can_cancel:
                return self._reachable(run, CheckRunHealthResult(WorkerStatus.RUNNING, f"{where} runs it"))
            cancel = client.cancel_execution(CancelExecutionRequest(run_id=run.run_id))
        except DagsterUserCodeUnreachableError as error:
            return self._unreachable(run, where, error)
        if dg.deserialize_value(cancel, CancelExecutionResult).success:
            # Only a process from before a reload of the code location can still hold it.
            message = (
                f"The code location at {where} was reloaded while this run ran; the process that "
                "runs it was asked to cancel it, so that no run goes on unseen."
            )
            # CANCELING, as a termination from the UI would: the interrupted run then ends
            # CANCELED (not "interrupted unexpectedly", a failure), or after
            # run_monitoring.cancel_timeout_seconds at the latest.
            self._instance.report_run_canceling(run, message=message)
            return self._reachable(run, CheckRunHealthResult(WorkerStatus.RUNNING, message))
        return self._reachable(
            run,
            CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"The code server at {where} does not run this run: it was restarted (a crash, "
                "its container or node gone), and the run worker, its child process, died with it.",
            ),
        )

    def _reachable(self, run: dg.DagsterRun, result: CheckRunHealthResult) -> CheckRunHealthResult:
        with self._lock:
            self._unreachable_since.pop(run.run_id, None)
        return result

    def _unreachable(self, run: dg.DagsterRun, where: str, error: Exception) -> CheckRunHealthResult:
        now = self._clock()
        with self._lock:
            since = self._unreachable_since.setdefault(run.run_id, now)
        waited = now - since
        if waited < self._unreachable_after_seconds:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                f"The code server at {where} is unreachable ({error}) for {waited:.0f} s; the run "
                f"counts as dead after {self._unreachable_after_seconds:.0f} s.",
            )
        with self._lock:
            self._unreachable_since.pop(run.run_id, None)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"The code server at {where} has been unreachable for {waited:.0f} s ({error}): "
            "its run worker, a child process of it, is taken for dead.",
        )


def _client(grpc_info: Mapping[str, Any]) -> DagsterGrpcClient:
    """A client for the code server that DefaultRunLauncher recorded in the run's tags."""
    return DagsterGrpcClient(
        port=grpc_info.get("port"),
        socket=grpc_info.get("socket"),
        host=grpc_info.get("host") or "localhost",
        use_ssl=bool(grpc_info.get("use_ssl", False)),
    )


def _address(client: DagsterGrpcClient) -> str:
    return f"{client.host}:{client.port}" if client.port else f"socket {client.socket}"

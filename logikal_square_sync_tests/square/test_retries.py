"""Retries of the scheduled Square run, through Dagster's own machinery on a real instance.

The real code location is served by a code server (a subprocess, as `dagster dev` and the
daemon start it); `square_daily_sync` is fired by the scheduler daemon's own function at
02:00; its run is queued and dequeued by the run-queue daemon's iteration and started by
the code server (DefaultRunLauncher), a run worker of its own; run monitoring and Dagster's
run retries are the monitoring and event-log consumer daemons' iterations. The instance has
the repository's dagster.yaml minus its storage (the demo's copy). An operator's policy
file (LSS_POLICIES_FILE) makes the delay between step retries 1.2 s and one HTTP attempt per
call, so a fault fails a step at once; nothing here sleeps for the delay.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import time_machine
import yaml

# Not exported by `dagster`: the daemons' own pieces, driven one iteration at a time as
# Dagster's own tests do, and the code-server workspace they run over.
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon
from dagster._daemon.daemon import MonitoringDaemon
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._scheduler.scheduler import launch_scheduled_runs

from logikal_square_sync.policies import MAX_RETRIES_TAG, RETRY_STRATEGY_TAG
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_sandbox.square import SquareSandbox
from logikal_square_sync_tests.square.helpers import (
    assert_warehouse_equals_source,
    normalized,
    source_inventory,
    source_line_items,
    source_orders,
    warehouse_inventory,
    warehouse_line_items,
    warehouse_orders,
)

ROOT = Path(__file__).resolve().parents[2]
LOCATION = "logikal_square_sync"
SCHEDULE = "square_daily_sync"
RETRIES = 2
POLICY_OVERRIDE = f"""\
retries:
  max_retries: {RETRIES}
  delay_minutes: 0.02       # 1.2 s
square:
  locations: {{max_attempts: 1}}
  catalog: {{max_attempts: 1}}
  orders: {{max_attempts: 1}}
  inventory: {{max_attempts: 1}}
# No other schedule: the scheduler fires every running one whose tick has come.
logikal:
  directories: {{enabled: false}}
  projects: {{enabled: false}}
retention:
  enabled: false
"""
# Variables of the outer environment that would change what the code server does.
_OWN_PREFIXES = ("LSS_", "SQUARE_", "LOGIKAL_", "SMTP_", "ALERT_")
_OWN_NAMES = {"WAREHOUSE_URL", "SLACK_WEBHOOK_URL", "BACKGROUND_SYNC_ENABLED", "SYNC_TIMEZONE"}
OTHERS = [dg.AssetKey(["square", name]) for name in ("locations", "orders", "inventory")]
CATALOG = dg.AssetKey(["square", "catalog"])


def local_instance_settings() -> dict[str, Any]:
    """The repository's dagster.yaml without its PostgreSQL storage, as the demo writes it."""
    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    settings.pop("storage")
    return settings


@dataclass
class Deployment:
    instance: dg.DagsterInstance
    workspace: WorkspaceProcessContext
    sandbox: SquareSandbox
    queue: QueuedRunCoordinatorDaemon = field(default_factory=lambda: QueuedRunCoordinatorDaemon(1))
    # Run monitoring, with the pool slots a dead run still claims (free_slots_after_run_end_seconds).
    monitoring: MonitoringDaemon = field(default_factory=lambda: MonitoringDaemon(1))
    run_retries: EventLogConsumerDaemon = field(default_factory=EventLogConsumerDaemon)

    def pump(self) -> None:
        """An iteration of the run queue, run monitoring and Dagster's run retries, as the daemon makes."""
        list(self.queue.run_iteration(self.workspace))
        list(self.monitoring.run_iteration(self.workspace))
        list(self.run_retries.run_iteration(self.workspace))

    def fire_schedule(self) -> dg.DagsterRun:
        """Starts `square_daily_sync` and lets the scheduler reach just past its next 02:00 UTC tick."""
        location = self.workspace.create_request_context().get_code_location(LOCATION)
        schedule = location.get_repository("__repository__").get_schedule(SCHEDULE)
        # Running by default (the master switch is on): stopped and started, as in the UI, so that its
        # state records a start before the tick (a schedule first seen running starts at that look).
        self.instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
        self.instance.start_schedule(schedule)
        now = datetime.now(UTC)
        # The first 02:00 UTC after now, today's or tomorrow's: exactly one tick lies between the
        # schedule's start and the end below, whatever the hour of the run.
        tick = datetime.combine(now.date(), datetime.min.time(), UTC) + timedelta(hours=2)
        if tick <= now:
            tick += timedelta(days=1)
        list(
            launch_scheduled_runs(
                self.workspace,
                logging.getLogger("scheduler"),
                end_datetime_utc=tick + timedelta(seconds=30),
                iteration_times={},
            )
        )
        (run,) = self.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE}))
        return run

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 240) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            value = check()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
            time.sleep(0.3)

    def finished(self, run_id: str) -> dg.DagsterRun:
        def done() -> dg.DagsterRun | None:
            run = self.instance.get_run_by_id(run_id)
            return run if run is not None and run.is_finished else None

        return self.wait(f"run {run_id} to finish", done)

    def events(self, run_id: str, event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
        return [
            r.event_log_entry for r in self.instance.get_records_for_run(run_id, of_type=event_type).records
        ]

    def steps(self, run_id: str, event_type: dg.DagsterEventType) -> list[str | None]:
        return [entry.step_key for entry in self.events(run_id, event_type)]

    def retries_of(self, run_id: str) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": run_id})))


def _retry_decision(deployment: Deployment, run_id: str) -> str | None:
    run = deployment.instance.get_run_by_id(run_id)
    return None if run is None else run.tags.get("dagster/will_retry")


@pytest.fixture
def deployment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pinned_clock: time_machine.Traveller,
    sandbox: SquareSandbox,
    square_url: str,
    warehouse_url: str,
) -> Iterator[Deployment]:
    # gRPC (this process's client of the code server) sets its call deadlines from time.time()
    # and its C core waits on the real clock: at the pinned moment every call would be overdue.
    # The clock stays pinned for the process, at the real moment; nothing here depends on the hour
    # (the schedule fires at the next 02:00 UTC after it, whatever that is).
    pinned_clock.move_to(datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC))
    for name in list(os.environ):
        if name.startswith(_OWN_PREFIXES) or name in _OWN_NAMES:
            monkeypatch.delenv(name)
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICY_OVERRIDE)
    monkeypatch.setenv("LSS_POLICIES_FILE", str(policies))
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("SQUARE_BASE_URL", square_url)
    monkeypatch.setenv("SQUARE_ACCESS_TOKEN", sandbox.config.access_token)
    # On (off, the schedule's ticks would skip); the policies above leave it the only schedule, and
    # no daemon but the test's own calls ticks anything.
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", "true")
    target = ModuleTarget(
        module_name="logikal_square_sync.definitions",
        attribute="defs",
        working_directory=str(ROOT),
        location_name=LOCATION,
    )
    with (
        dg.instance_for_test(overrides=local_instance_settings()) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        entry = next(iter(workspace.create_request_context().get_code_location_entries().values()))
        assert entry.code_location is not None, entry.load_error
        deployment = Deployment(instance, workspace, sandbox)
        # The run-retry daemon's first iteration only places its cursor at the end of the event log.
        deployment.pump()
        yield deployment
        sandbox.faults.clear()


def _materialized_by(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    event = instance.get_latest_materialization_event(key)
    return event.run_id if event is not None else None


def test_a_failed_catalog_step_is_retried_after_the_delay_while_the_others_sync(
    deployment: Deployment, sandbox: SquareSandbox, engine: sa.Engine
) -> None:
    # The catalog's first call fails (one HTTP attempt per call here); its retry finds Square well.
    sandbox.faults.inject("server_error", endpoint="catalog_search", times=1)
    run = deployment.fire_schedule()
    # The schedule's run carries Dagster's run retries and room for its step retries.
    assert run.tags[MAX_RETRIES_TAG] == str(RETRIES)
    assert run.tags[RETRY_STRATEGY_TAG] == "FROM_FAILURE"

    done = deployment.finished(run.run_id)
    assert done.status == dg.DagsterRunStatus.SUCCESS
    up_for_retry = deployment.events(run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert [entry.step_key for entry in up_for_retry] == ["square__catalog"]
    retry_data = up_for_retry[0].get_dagster_event().step_retry_data
    assert retry_data.seconds_to_wait == pytest.approx(1.2)
    assert retry_data.error is not None
    assert "SearchCatalogObjects failed with HTTP 500" in retry_data.error.to_string()
    assert deployment.steps(run.run_id, dg.DagsterEventType.STEP_RESTARTED) == ["square__catalog"]
    assert sandbox.stats.calls["catalog_search"] >= 2  # the failed call, then the retry's
    # One run did it all: no run retry was needed.
    assert deployment.retries_of(run.run_id) == []
    for key in [*OTHERS, CATALOG]:
        assert _materialized_by(deployment.instance, key) == run.run_id, key
    assert_warehouse_equals_source(engine, sandbox)


def test_a_catalog_failing_on_every_retry_fails_the_run_once_and_the_others_still_sync(
    deployment: Deployment, sandbox: SquareSandbox, engine: sa.Engine
) -> None:
    sandbox.faults.inject("server_error", endpoint="catalog_search", times=None)
    run = deployment.fire_schedule()
    done = deployment.finished(run.run_id)

    assert done.status == dg.DagsterRunStatus.FAILURE
    # The configured number of retries, each after the delay; then the step fails with its own error.
    assert (
        deployment.steps(run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == ["square__catalog"] * RETRIES
    )
    assert sandbox.stats.calls["catalog_search"] == RETRIES + 1
    (failure,) = deployment.events(run.run_id, dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "square__catalog"
    error = failure.get_dagster_event().step_failure_data.error
    assert error is not None and "SearchCatalogObjects failed with HTTP 500" in str(error.to_string())
    # A failed step is not retried by run retries as well: the run is final, and its alert due.
    # Dagster's run retries decide after the run's status is written: wait for the decision.
    decided = deployment.wait(
        f"run {run.run_id}'s retry decision", lambda: _retry_decision(deployment, run.run_id)
    )
    assert decided == "false"
    for _ in range(3):
        deployment.pump()
    assert deployment.retries_of(run.run_id) == []

    # The catalog's failure stopped none of the others: they synced in the same run.
    for key in OTHERS:
        assert _materialized_by(deployment.instance, key) == run.run_id, key
    assert _materialized_by(deployment.instance, CATALOG) is None
    assert warehouse_orders(engine) == source_orders(sandbox)
    assert warehouse_line_items(engine) == normalized(source_line_items(sandbox))
    expected_inventory = {k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items()}
    assert warehouse_inventory(engine) == expected_inventory
    with engine.connect() as conn:
        locations = set(conn.execute(sa.select(t.square_locations.c.id)).scalars())
        catalog_rows = conn.execute(
            sa.select(sa.func.count()).select_from(t.square_catalog_items)
        ).scalar_one()
    assert locations == {location["id"] for location in sandbox.locations()}
    assert catalog_rows == 0


def _worker_pid(deployment: Deployment, run_id: str) -> int | None:
    for entry in deployment.events(run_id, dg.DagsterEventType.ENGINE_EVENT):
        message = entry.message or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.removeprefix("Started process for run (pid: ").split(")")[0])
    return None


def test_a_run_whose_worker_died_is_re_executed_from_failure_by_dagster(
    deployment: Deployment, sandbox: SquareSandbox, engine: sa.Engine
) -> None:
    # SearchOrders is held unanswered: the run stops mid-orders, where its worker is killed.
    held = sandbox.faults.inject("hold", endpoint="orders_search", times=None)
    run = deployment.fire_schedule()
    deployment.wait("the orders sync to reach Square", lambda: held.fired >= 1)
    pid = deployment.wait("the run worker's pid", lambda: _worker_pid(deployment, run.run_id))
    done_before = set(deployment.steps(run.run_id, dg.DagsterEventType.STEP_SUCCESS))
    assert "square__orders" not in done_before
    os.kill(pid, signal.SIGKILL)  # as an OOM kill would
    sandbox.faults.clear()  # Square answers again

    # The code server reports the dead worker; Dagster's run retries re-execute the run.
    (retry,) = deployment.wait("the run's retry", lambda: deployment.retries_of(run.run_id))
    failed = deployment.instance.get_run_by_id(run.run_id)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    assert failed.tags["dagster/will_retry"] == "true"  # so no alert for it
    assert failed.tags["dagster/auto_retry_run_id"] == retry.run_id
    assert retry.tags["dagster/root_run_id"] == run.run_id
    assert retry.tags["dagster/retry_number"] == "1"
    assert retry.tags[RETRY_STRATEGY_TAG] == "FROM_FAILURE"
    assert retry.tags["dagster/schedule_name"] == SCHEDULE

    finished = deployment.finished(retry.run_id)
    assert finished.status == dg.DagsterRunStatus.SUCCESS
    # From failure: only what had not succeeded runs again.
    started = set(deployment.steps(retry.run_id, dg.DagsterEventType.STEP_START))
    assert "square__orders" in started
    assert started.isdisjoint(done_before), (started, done_before)
    assert "dagster/will_retry" not in finished.tags
    assert_warehouse_equals_source(engine, sandbox)

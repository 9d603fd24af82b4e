"""BACKGROUND_SYNC_ENABLED: off, every syncing schedule and sensor skips at each tick, saying why.

Dagster keeps a schedule or sensor someone started in the UI running whatever its default
status, so the switch is asked again at every evaluation. Most tests evaluate the ticks as
the daemon's request to the code server does (the definition's `evaluate_tick`), on a real
instance; one starts a schedule and a sensor in the instance, as the UI's toggle does, and
runs Dagster's own scheduler and sensor daemon iterations over the code location.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

# Not exported by `dagster`: what the daemon runs, and what its own tests use to run it in-process.
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._scheduler.scheduler import launch_scheduled_runs

from logikal_square_sync import definitions
from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.definitions import build_defs
from logikal_square_sync.orchestration.settings import background_sync_enabled
from logikal_square_sync_tests.instances import instance_for_test

ALERT_SENSORS = {"alert_on_run_failure", "alert_on_stale_assets"}
SYNCING = {
    "square_daily_sync",
    "logikal_directories_schedule",
    "logikal_projects_schedule",
    "logikal_project_sync_sensor",
    "logikal_new_project_sensor",
}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def _defs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, switch: str) -> dg.Definitions:
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", switch)
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    return build_defs()


def _syncing(defs: dg.Definitions) -> dict[str, dg.ScheduleDefinition | dg.SensorDefinition]:
    """Every schedule and sensor that materializes a LogiKal or Square asset (derived, not listed)."""
    found: dict[str, dg.ScheduleDefinition | dg.SensorDefinition] = {}
    repository = defs.get_repository_def()
    instigators: list[dg.ScheduleDefinition | dg.SensorDefinition] = [
        *repository.schedule_defs,
        *repository.sensor_defs,
    ]
    for instigator in instigators:
        if isinstance(instigator, dg.ScheduleDefinition):
            jobs = [instigator.job_name]
        else:  # the alert sensors watch runs and target no job
            jobs = [job.name for job in instigator.jobs] if instigator.has_jobs else []
        keys = {key for job in jobs for key in defs.resolve_job_def(job).asset_layer.executable_asset_keys}
        if any(key.path[0] in ("logikal", "square") for key in keys):
            found[instigator.name] = instigator
    return found


def _evaluate(
    instigator: dg.ScheduleDefinition | dg.SensorDefinition,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
) -> tuple[list[dg.RunRequest], str | None]:
    if isinstance(instigator, dg.ScheduleDefinition):
        data = instigator.evaluate_tick(dg.build_schedule_context(instance=instance))
        return list(data.run_requests or []), data.skip_message
    resources = {key: (defs.resources or {})[key] for key in instigator.required_resource_keys}
    context = dg.build_sensor_context(instance=instance, resources=resources, definitions=defs)
    result = instigator.evaluate_tick(context)
    return list(result.run_requests or []), result.skip_message


def test_switched_off_every_syncing_schedule_and_sensor_skips_saying_why(
    monkeypatch, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    defs = _defs(monkeypatch, tmp_path, "false")
    syncing = _syncing(defs)
    assert set(syncing) == SYNCING
    for name, instigator in syncing.items():
        assert instigator.default_status.value == "STOPPED", name  # the default stays as it was
        requests, skipped = _evaluate(instigator, defs, instance)
        assert requests == [], name
        assert skipped is not None and skipped.startswith("BACKGROUND_SYNC_ENABLED is false: "), (
            name,
            skipped,
        )
    # The project-sync sensor still records how stale the projects get, for the staleness alerts.
    context = dg.build_sensor_context(
        instance=instance, resources={"warehouse": (defs.resources or {})["warehouse"]}, definitions=defs
    )
    result = defs.resolve_sensor_def("logikal_project_sync_sensor").evaluate_tick(context)
    checks = {event.check_name for event in result.asset_events if isinstance(event, dg.AssetCheckEvaluation)}
    assert checks == {"project_contents_fresh", "parts_lists_readable"}, result.asset_events
    # The alert sensors are evaluated as usual: a failure during maintenance still pages.
    for name in ALERT_SENSORS:
        _, skipped = _evaluate(defs.resolve_sensor_def(name), defs, instance)
        assert "BACKGROUND_SYNC_ENABLED" not in (skipped or ""), (name, skipped)


def test_switched_on_the_schedules_request_their_runs(monkeypatch, tmp_path: Path, instance) -> None:
    defs = _defs(monkeypatch, tmp_path, "true")
    for name, instigator in _syncing(defs).items():
        requests, skipped = _evaluate(instigator, defs, instance)
        assert "BACKGROUND_SYNC_ENABLED" not in (skipped or ""), (name, skipped)
        if isinstance(instigator, dg.ScheduleDefinition):
            # One run per tick, tagged as the schedule is (max runtime, ...).
            (request,) = requests
            assert dict(instigator.tags) and dict(instigator.tags).items() <= request.tags.items(), name


def test_the_switch_is_asked_at_each_tick_not_only_at_load(monkeypatch, tmp_path: Path, instance) -> None:
    """Loaded while on (so started by default), then switched off: the next tick skips."""
    defs = _defs(monkeypatch, tmp_path, "true")
    schedule = defs.resolve_schedule_def("square_daily_sync")
    assert schedule.default_status.value == "RUNNING"
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", "off")
    requests, skipped = _evaluate(schedule, defs, instance)
    assert requests == [] and skipped and skipped.startswith("BACKGROUND_SYNC_ENABLED is false")


def test_started_as_in_the_ui_the_daemon_records_skipped_ticks_saying_why(
    monkeypatch, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", "false")
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    definitions._defs_of_this_process.cache_clear()  # built now, with this environment
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=definitions.__name__, attribute="defs"),
        location_name="logikal_square_sync",
    )
    logger = logging.getLogger("test_master_switch")
    try:
        with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as context:
            location = context.create_request_context().get_code_location("logikal_square_sync")
            (repository,) = location.get_repositories().values()
            schedule = repository.get_schedule("square_daily_sync")
            sensor = repository.get_sensor("logikal_new_project_sensor")
            # What the UI's toggles do: a running state stored in the instance over the STOPPED default.
            instance.start_schedule(schedule)
            instance.start_sensor(sensor)
            # A day on: the daily cron has come once, and the sensor is due.
            end = utc_now() + timedelta(days=1, minutes=1)
            list(launch_scheduled_runs(context, logger, end_datetime_utc=end, iteration_times={}))
            list(execute_sensor_iteration(context, logger, None, None))
            for instigator in (schedule, sensor):
                ticks = instance.get_ticks(instigator.get_remote_origin_id(), instigator.selector_id)
                assert ticks, instigator.name
                for tick in ticks:
                    assert tick.status == TickStatus.SKIPPED, (instigator.name, tick)
                    assert tick.skip_reason and tick.skip_reason.startswith(
                        "BACKGROUND_SYNC_ENABLED is false"
                    )
            assert instance.get_runs() == []
    finally:
        definitions._defs_of_this_process.cache_clear()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(value, True) for value in ("true", "TRUE", "1", "yes", "On", " true ", "")],
        *[(value, False) for value in ("false", "False", "0", "no", "OFF")],
    ],
)
def test_the_accepted_values(monkeypatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", value)
    assert background_sync_enabled() is expected


@pytest.mark.parametrize("value", ["disabled", "flase", "2", "enabled"])
def test_an_invalid_value_fails_the_load_naming_the_variable_and_the_values(
    monkeypatch, tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValueError, match=rf"BACKGROUND_SYNC_ENABLED='{value}'") as raised:
        _defs(monkeypatch, tmp_path, value)
    assert "true/false, 1/0, yes/no, on/off" in str(raised.value)

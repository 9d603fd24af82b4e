"""A project that logikal/projects discovers gets its first sync within a minute, not at the 5-minute tick."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.logikal.assets import logikal_directories, logikal_projects
from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.logikal.sensors import NEW_PROJECT_SENSOR_NAME, SENSOR_NAME


def _discover(defs: dg.Definitions, instance) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(
        instance=instance, asset_selection=[logikal_directories.key, logikal_projects.key]
    ).success


def _tick(defs, instance, warehouse, name: str = NEW_PROJECT_SENSOR_NAME):
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, definitions=defs)
    return defs.get_sensor_def(name)(context)


def _sync(defs, instance, project: str) -> None:
    assert (
        defs.resolve_job_def(PROJECT_SYNC_JOB)
        .execute_in_process(instance=instance, partition_key=project)
        .success
    )


def test_discovered_projects_are_queued_at_the_next_30_second_tick(
    defs, instance, warehouse, sandbox
) -> None:
    sensor = defs.get_sensor_def(NEW_PROJECT_SENSOR_NAME)
    assert sensor.minimum_interval_seconds == 30 and sensor.job_name == PROJECT_SYNC_JOB
    assert defs.get_sensor_def(SENSOR_NAME).minimum_interval_seconds == 300
    _discover(defs, instance)
    projects = sorted(p["id"] for p in sandbox.projects())
    instance.delete_dynamic_partition(PROJECTS_PARTITIONS_NAME, projects[0])

    result = _tick(defs, instance, warehouse)

    requested = {request.partition_key: request for request in result.run_requests}
    assert set(requested) == set(projects)
    assert all(
        r.run_key == f"first-sync:{p}" and r.tags["logikal/sync_reason"] == "new"
        for p, r in requested.items()
    )
    (added,) = result.dynamic_partitions_requests  # the run needs its partition
    assert list(added.partition_keys) == [projects[0]]
    assert not result.asset_events  # the freshness check stays with the 5-minute sensor


def test_only_never_synced_projects_not_queued_and_not_failed(
    defs, instance, warehouse, sandbox, engine
) -> None:
    _discover(defs, instance)
    first, second, third = sorted(p["id"] for p in sandbox.projects())
    _sync(defs, instance, first)
    instance.create_run_for_job(
        defs.resolve_job_def(PROJECT_SYNC_JOB),
        run_config={},
        tags={"dagster/partition": second},
        status=dg.DagsterRunStatus.NOT_STARTED,
    )
    assert [r.partition_key for r in _tick(defs, instance, warehouse).run_requests] == [third]

    # A first sync that failed is retried by the 5-minute sensor after its backoff, never here.
    locked = sandbox.elevations(third, sandbox.phases(third)[0]["id"])[0]["id"]
    sandbox.lock_elevation(locked)
    _sync(defs, instance, third)
    assert isinstance(_tick(defs, instance, warehouse), dg.SkipReason)
    five_minutes = [r.partition_key for r in _tick(defs, instance, warehouse, SENSOR_NAME).run_requests]
    assert third not in five_minutes  # still in its 5-minute backoff

    # A project added in LogiKal: the next projects run finds it, the next 30-second tick queues it.
    new = sandbox.add_project(sandbox.project_directory(first), "Added just now")
    _discover(defs, instance)
    result = _tick(defs, instance, warehouse)
    assert [r.partition_key for r in result.run_requests] == [new]
    _sync(defs, instance, new)
    assert isinstance(_tick(defs, instance, warehouse), dg.SkipReason)
    assert utc_now() - timedelta(minutes=5) < _synced_at(engine, new)


def _synced_at(engine, project: str):
    import sqlalchemy as sa

    from logikal_square_sync.warehouse.tables import logikal_projects as projects

    with engine.connect() as conn:
        return conn.execute(
            sa.select(projects.c.contents_synced_at).where(projects.c.id == project)
        ).scalar_one()

"""The LogiKal assets, checks, job and sensor run through Dagster (in process) against the sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.logikal.assets import PARTITION_ROW_COUNT, logikal_directories, logikal_projects
from logikal_square_sync.logikal.checks import CHECK_NAME, READABLE_CHECK_NAME, project_contents_fresh
from logikal_square_sync.logikal.definitions import build_defs as build_logikal_defs
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.logikal.sensors import SENSOR_NAME
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.resource import warehouse_resource_from_env
from logikal_square_sync_tests.logikal.source_truth import assert_warehouse_equals_source, marked_deleted
from logikal_square_sync_tests.marks import SQLITE_ONLY

KEYS = [
    "logikal/directories",
    "logikal/projects",
    "logikal/phases",
    "logikal/elevations",
    "logikal/parts_lists",
]


def _discover(
    defs: dg.Definitions, instance, run_config: dict | None = None, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        asset_selection=[logikal_directories.key, logikal_projects.key],
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def _observations(result: dg.ExecuteInProcessResult) -> dict[str, Mapping[str, dg.MetadataValue]]:
    observed = {}
    for event in result.get_asset_observation_events():
        assert event.asset_key is not None
        observed[event.asset_key.to_user_string()] = event.asset_observation_data.asset_observation.metadata
    return observed


def _assert_partition_row_counts(
    engine: sa.Engine, project: str, metadata: dict[str, dict[str, dg.MetadataValue]]
) -> None:
    """Each partition reports the rows the warehouse holds for its project, and the table's in all."""
    p, e, pl = t.logikal_phases, t.logikal_elevations, t.logikal_parts_lists
    of_project = sa.select(e.c.id).where(e.c.project_id == project)
    counted = {
        "logikal/phases": (p, p.c.project_id == project),
        "logikal/elevations": (e, e.c.project_id == project),
        "logikal/parts_lists": (pl, pl.c.elevation_id.in_(of_project)),
    }
    with engine.connect() as conn:
        for key, (table, where) in counted.items():
            in_project = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
            in_all = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            assert metadata[key][PARTITION_ROW_COUNT].value == in_project > 0, key
            assert metadata[key]["dagster/row_count"].value == in_all > in_project, key


def test_assets_fill_the_warehouse_and_register_a_partition_per_project(
    defs, instance, engine, sandbox
) -> None:
    discovery = _discover(defs, instance)
    assert discovery.success
    projects = {p["id"] for p in sandbox.projects()}
    assert set(instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME)) == projects
    checked = {e.check_name: e.passed for e in discovery.get_asset_check_evaluations()}
    # Just discovered: not stale yet, every file readable, the tree a tree.
    assert checked[CHECK_NAME] and checked[READABLE_CHECK_NAME] and all(checked.values()), checked
    listing = discovery.asset_materializations_for_node("logikal__projects")[0].metadata
    assert listing["partitions_added"].value == len(projects) and listing["logins"].value == 1

    job = defs.resolve_job_def(PROJECT_SYNC_JOB)
    for project in sorted(projects):
        result = job.execute_in_process(partition_key=project, instance=instance)
        assert result.success
    assert_warehouse_equals_source(engine, sandbox)

    materializations = result.get_asset_materialization_events()
    metadata = {
        event.asset_key.to_user_string(): event.materialization.metadata for event in materializations
    }
    assert set(metadata) == {"logikal/phases", "logikal/elevations", "logikal/parts_lists"}
    for values in metadata.values():
        for key in ("rows_changed", "logins", "api_calls", "duration_seconds"):
            assert key in values, key
    _assert_partition_row_counts(engine, project, metadata)
    parts = metadata["logikal/parts_lists"]
    assert parts["parts_lists_fetched"].value == 4 and parts["parts_lists_failed"].value == 0
    assert parts["parts_lists_skipped"].value == 0 and parts["logins"].value >= 2

    again = job.execute_in_process(partition_key=project, instance=instance)
    parts = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in again.get_asset_materialization_events()
    }
    assert parts["logikal/parts_lists"]["parts_lists_fetched"].value == 0
    assert parts["logikal/parts_lists"]["logins"].value == 1


def test_a_subset_materializes_only_what_was_selected(defs, instance, sandbox) -> None:
    _discover(defs, instance)
    project = sorted(p["id"] for p in sandbox.projects())[0]
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, partition_key=project, asset_selection=[dg.AssetKey(["logikal", "phases"])]
    )
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == [
        "logikal/phases"
    ]
    assert sandbox.stats.parts_lists_served == 0


def test_the_freshness_check_names_the_stale_projects(defs, instance, engine, warehouse, sandbox) -> None:
    _discover(defs, instance)
    stale = sorted(sandbox.projects(), key=lambda p: p["id"])[0]
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.logikal_projects)
            .where(t.logikal_projects.c.id == stale["id"])
            .values(synced_at=utc_now() - timedelta(days=3))
        )
    result = project_contents_fresh(warehouse=warehouse)
    assert isinstance(result, dg.AssetCheckResult) and result.description is not None
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert stale["name"] in result.description and result.metadata["projects_past_fail"].value == 1


def test_the_sensor_queues_due_projects_once_and_records_staleness(
    defs, instance, engine, warehouse, sandbox
) -> None:
    _discover(defs, instance)
    projects = sorted(p["id"] for p in sandbox.projects())
    # A partition lost from the instance comes back through the sensor.
    instance.delete_dynamic_partition(PROJECTS_PARTITIONS_NAME, projects[0])
    busy = projects[1]
    instance.create_run_for_job(
        defs.resolve_job_def(PROJECT_SYNC_JOB),
        run_config={},
        tags={"dagster/partition": busy},
        status=dg.DagsterRunStatus.NOT_STARTED,
    )

    sensor = defs.get_sensor_def(SENSOR_NAME)
    result = sensor(
        dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, definitions=defs)
    )

    requested = {request.partition_key: request.tags for request in result.run_requests}
    assert set(requested) == set(projects) - {busy}  # never synced: all due, but not the queued one
    assert all(
        tags["logikal/sync_reason"] == "new" and tags["dagster/priority"] == "-1"
        for tags in requested.values()
    )
    (added,) = result.dynamic_partitions_requests
    assert list(added.partition_keys) == [projects[0]]
    assert {e.check_name: e.passed for e in result.asset_events} == {
        CHECK_NAME: True,
        READABLE_CHECK_NAME: True,
    }


def test_definitions_follow_the_contract(monkeypatch) -> None:
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", "false")
    monkeypatch.setenv("LOGIKAL_PASSWORD", "secret-value")
    logikal = build_logikal_defs()
    # The warehouse comes from the top-level definitions.
    assert logikal.resources is not None and set(logikal.resources) == {"logikal"}
    defs = dg.Definitions.merge(
        logikal, dg.Definitions(resources={"warehouse": warehouse_resource_from_env()})
    )
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == set(KEYS)
    for key in KEYS:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == "logikal" and node.owners and node.kinds and node.description, key
        assert node.freshness_policy is not None, key
    partitioned = [graph.get(dg.AssetKey.from_user_string(key)).partitions_def for key in KEYS[2:]]
    partitioned.append(defs.resolve_job_def(PROJECT_SYNC_JOB).partitions_def)
    for partitions in partitioned:
        assert isinstance(partitions, dg.DynamicPartitionsDefinition)
        assert partitions.name == PROJECTS_PARTITIONS_NAME
    names = {s.name for s in defs.schedules or ()}
    crons = {name: defs.resolve_schedule_def(name).cron_schedule for name in names}
    assert crons == {"logikal_directories_schedule": "0 * * * *", "logikal_projects_schedule": "5,35 * * * *"}
    sensors = list(defs.sensors or ())
    assert all(defs.resolve_schedule_def(name).default_status.value == "STOPPED" for name in names)
    assert sensors and all(s.default_status.value == "STOPPED" for s in sensors)
    assert defs.resources is not None
    resource = defs.resources["logikal"]
    assert resource.password == dg.EnvVar("LOGIKAL_PASSWORD") and resource.username == dg.EnvVar(
        "LOGIKAL_USERNAME"
    )
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", "true")
    running = list(build_logikal_defs().sensors or ())
    assert running and all(s.default_status.value == "RUNNING" for s in running)


def test_a_deleted_project_loses_its_partition_and_its_runs_succeed(
    defs, instance, engine, sandbox, warehouse, logikal
) -> None:
    _discover(defs, instance)
    job = defs.resolve_job_def(PROJECT_SYNC_JOB)
    projects = sorted(p["id"] for p in sandbox.projects())
    for project in projects:
        assert job.execute_in_process(partition_key=project, instance=instance).success
    gone = projects[0]
    sandbox.delete_project(gone)
    with logikal.pool() as pool:  # marked deleted, its partition not yet removed
        sync_projects(pool, warehouse.engine)

    # Launched by hand from the partition still shown: it succeeds, saying why nothing was synced.
    by_hand = job.execute_in_process(partition_key=gone, instance=instance)
    assert by_hand.success and by_hand.get_asset_materialization_events() == []
    observed = _observations(by_hand)
    assert set(observed) == {"logikal/phases", "logikal/elevations", "logikal/parts_lists"}
    assert all("deleted at the source" in str(metadata["not_synced"].value) for metadata in observed.values())

    listing = _discover(defs, instance).asset_materializations_for_node("logikal__projects")[0].metadata
    assert listing["partitions_removed"].value == 1
    assert set(instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME)) == set(projects[1:])

    # A run queued before the partition went (it carries the partition as a tag) succeeds too.
    queued = job.execute_in_process(instance=instance, tags={"dagster/partition": gone})
    assert queued.success and set(_observations(queued)) == set(observed)

    # The sensor neither queues it nor brings its partition back.
    sensor = defs.get_sensor_def(SENSOR_NAME)
    ticked = sensor(
        dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, definitions=defs)
    )
    assert gone not in {request.partition_key for request in ticked.run_requests}
    assert not ticked.dynamic_partitions_requests
    assert marked_deleted(engine)["projects"] == {gone}
    assert_warehouse_equals_source(engine, sandbox)


def test_a_mass_deletion_fails_the_run_until_the_config_accepts_it(defs, instance, engine, sandbox) -> None:
    _discover(defs, instance)
    doomed = sorted(p["id"] for p in sandbox.projects())[:2]
    for project in doomed:
        sandbox.delete_project(project)

    refused = _discover(defs, instance, raise_on_error=False)
    assert not refused.success
    (failure,) = [event for event in refused.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    assert error is not None
    message = (error.cause or error).message  # the user code's error, under Dagster's wrapper
    assert "would mark 2 of 3 live LogiKal projects deleted" in message
    assert "allow_mass_deletion: true" in message
    assert marked_deleted(engine)["projects"] == set()

    accept = {"ops": {"logikal__projects": {"config": {"allow_mass_deletion": True}}}}
    accepted = _discover(defs, instance, accept)
    metadata = accepted.asset_materializations_for_node("logikal__projects")[0].metadata
    assert metadata["projects_vanished"].value == 2 and metadata["partitions_removed"].value == 2
    assert marked_deleted(engine)["projects"] == set(doomed)


# Three elevations per phase: six parts lists on a pool of four, so some session selects a
# second elevation of its phase (a sibling select) in the first run; with two per phase the
# pool may give each parts list a session of its own, and nothing is ever refused.
THREE_PER_PHASE = {"elevations_per_phase": 3}


@pytest.mark.parametrize(
    "sandbox",
    [
        pytest.param(
            {"allow_sibling_elevation_select": False, "sibling_refusal_status": 405, **THREE_PER_PHASE},
            id="405",
        ),
        pytest.param(
            {"allow_sibling_elevation_select": False, "sibling_refusal_status": 409, **THREE_PER_PHASE},
            id="409",
            marks=SQLITE_ONLY,
        ),
    ],
    indirect=True,
)
def test_every_project_syncs_when_sibling_selects_are_refused(defs, instance, engine, sandbox) -> None:
    status = sandbox.config.sibling_refusal_status
    _discover(defs, instance)
    job = defs.resolve_job_def(PROJECT_SYNC_JOB)
    findings = []
    for project in sorted(p["id"] for p in sandbox.projects()):
        result = job.execute_in_process(partition_key=project, instance=instance)
        assert result.success
        (parts,) = [
            event.materialization.metadata
            for event in result.get_asset_materialization_events()
            if event.asset_key.to_user_string() == "logikal/parts_lists"
        ]
        assert parts["parts_lists_failed"].value == 0
        findings.append(parts["sibling_elevation_select"].value)
    assert_warehouse_equals_source(engine, sandbox)
    # Learned once, by the first run; the next runs start from it (kept in the warehouse).
    assert findings[0].startswith(f"refused ({status}), learned in this run")
    assert all(finding.startswith(f"refused ({status}), known since") for finding in findings[1:])

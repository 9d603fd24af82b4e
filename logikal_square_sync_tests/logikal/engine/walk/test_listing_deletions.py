"""Phases and elevations are marked deleted only once a fresh session's listing confirms it, within the limit.

Real HTTP against the sandbox, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.alerts.hints import hint_for
from logikal_square_sync.alerts.messages import error_summary
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.engine.walk.deletion_limit import MassDeletionError
from logikal_square_sync.logikal.jobs import PROJECT_SYNC_JOB
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_sandbox.logikal import ZERO_GUID
from logikal_square_sync_tests.logikal.sandbox_runs import modes_on_sqlite, sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    NOTHING_DELETED,
    assert_warehouse_equals_source,
    marked_deleted,
    warehouse_state,
)


def _project(sandbox) -> dict[str, Any]:
    return sorted(sandbox.projects(), key=lambda p: p["id"])[0]


def _contents_synced_at(engine: sa.Engine, project_id: str) -> Any:
    p = t.logikal_projects.c
    with engine.connect() as conn:
        return conn.execute(sa.select(p.contents_synced_at).where(p.id == project_id)).scalar_one()


# -- a short listing once is listed again, and marks nothing deleted --------------------------------


@pytest.mark.parametrize("how", ["empty", "shrunken"])
def test_a_short_phase_listing_once_marks_nothing_deleted(logikal, engine, sandbox, how: str) -> None:
    sync_everything(logikal, engine)
    for elevation in sandbox.all_elevation_ids():
        sandbox.change_elevation(elevation)  # parts lists to fetch too: the walk goes on after the relisting
    project = _project(sandbox)["id"]
    assert sandbox.short_listing_once("phases", targets=[(project,)], how=how) == [(project,)]

    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)

    assert sandbox.listing_faults.pending() == []  # the short answer was served
    assert marked_deleted(engine) == NOTHING_DELETED
    assert result.client["relistings"] == 1
    assert result.parts_lists_fetched == len(sandbox.phases(project)) * 2
    assert result.not_synced_because is None and _contents_synced_at(engine, project) is not None
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)
    assert sandbox.stats.active_sessions == 0


@pytest.mark.parametrize("how", ["empty", "shrunken"])
def test_a_short_elevation_listing_once_marks_nothing_deleted(logikal, engine, sandbox, how: str) -> None:
    sync_everything(logikal, engine)
    project = _project(sandbox)["id"]
    phases = [(project, phase["id"]) for phase in sandbox.phases(project)]
    sandbox.short_listing_once("elevations", targets=phases, how=how)
    before = warehouse_state(engine, live_only=False)

    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)

    assert sandbox.listing_faults.pending() == []
    assert marked_deleted(engine) == NOTHING_DELETED
    assert result.client["relistings"] == len(phases)
    assert warehouse_state(engine, live_only=False) == before
    assert_warehouse_equals_source(engine, sandbox)
    assert sandbox.stats.active_sessions == 0


def test_a_short_project_listing_once_marks_no_project_deleted(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    directories = sandbox.short_listing_once("projects", share=1.0)
    assert len(directories) == 3
    gone = _project(sandbox)
    sandbox.delete_project(gone["id"])  # a real deletion beside the short listings: confirmed, marked

    with logikal.pool() as pool:
        result = sync_projects(pool, engine)

    assert sandbox.listing_faults.pending() == []
    assert result.vanished_project_ids == [gone["id"]]
    assert result.client["relistings"] == 3  # one fresh listing per directory that lacked a live project
    assert marked_deleted(engine)["projects"] == {gone["id"]}
    assert_warehouse_equals_source(engine, sandbox)
    assert sandbox.stats.active_sessions == 0


def test_a_complete_listing_costs_no_extra_login(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project = _project(sandbox)["id"]
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)
    assert result.client["relistings"] == 0 and result.client["logins"] == 1


# -- a real deletion is confirmed and marked in the same sync ---------------------------------------


def test_a_phase_and_an_elevation_deleted_at_the_source_are_marked_in_that_sync(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    project = _project(sandbox)["id"]
    default, other = (phase["id"] for phase in sandbox.phases(project))
    assert default == ZERO_GUID
    with pytest.raises(ValueError, match="default phase"):
        sandbox.delete_phase(project, default)
    with_phase = set(sandbox.delete_phase(project, other))
    elevation = sandbox.elevations(project, default)[0]["id"]
    sandbox.delete_elevation(elevation)

    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)

    deleted = marked_deleted(engine)
    assert deleted["phases"] == {(project, other)}
    assert deleted["elevations"] == with_phase | {elevation}
    assert result.phases.deleted == 1 and result.elevations.deleted == 3
    # One relisting each: the phases (one lacking), the default phase's elevations (one lacking).
    assert result.client["relistings"] == 2
    assert result.not_synced_because is None and _contents_synced_at(engine, project) is not None
    assert_warehouse_equals_source(engine, sandbox)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.logikal_elevations.c.deleted_at).where(t.logikal_elevations.c.id == elevation)
        )
        assert rows.scalar_one() is not None


# -- the deletion limit, per project ----------------------------------------------------------------


def test_a_mass_deletion_of_elevations_fails_naming_the_project_and_counts(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project = _project(sandbox)
    doomed = [
        e["id"]
        for phase in sandbox.phases(project["id"])
        for e in sandbox.elevations(project["id"], phase["id"])
    ]
    doomed = doomed[:3]  # 3 of the project's 4 elevations; both phases stay
    for elevation in doomed:
        sandbox.delete_elevation(elevation)
    before = warehouse_state(engine, live_only=False)
    synced_before = _contents_synced_at(engine, project["id"])

    with logikal.pool() as pool, pytest.raises(MassDeletionError) as error:
        sync_project_contents(pool, engine, project["id"])

    message = str(error.value)
    assert (
        f"logikal/elevations would mark 3 of 4 elevations of LogiKal project {project['name']!r} "
        f"({project['id']}) deleted (75%)"
    ) in message
    assert "logikal.deletion_limit.max_share" in message and all(e in message for e in doomed)
    assert f"(partition {project['id']})" in message
    assert "ops: {logikal_project_contents: {config: {allow_mass_deletion: true}}}" in message
    assert hint_for(message, "logikal").kind == "deletion limit"
    assert warehouse_state(engine, live_only=False) == before
    assert _contents_synced_at(engine, project["id"]) == synced_before
    assert sandbox.stats.active_sessions == 0

    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project["id"], allow_mass_deletion=True)
    assert result.elevations.deleted == 3
    assert marked_deleted(engine)["elevations"] == set(doomed)
    assert_warehouse_equals_source(engine, sandbox)


def test_a_mass_deletion_of_phases_fails_too(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    directory = sandbox.directories()[0]["path"]
    project = sandbox.add_project(directory, "Four phases", phases=4, elevations_per_phase=1)
    sync_everything(logikal, engine)
    doomed = [phase["id"] for phase in sandbox.phases(project)[1:]]
    for phase in doomed:
        sandbox.delete_phase(project, phase)

    refused = pytest.raises(
        MassDeletionError, match=r"logikal/phases would mark 3 of 4 phases of LogiKal project 'Four phases'"
    )
    with logikal.pool() as pool, refused:
        sync_project_contents(pool, engine, project)
    assert marked_deleted(engine) == NOTHING_DELETED

    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project, allow_mass_deletion=True)
    # The elevations of a deleted phase go with it: they count under the phases, not the elevations.
    assert result.phases.deleted == 3 and result.elevations.deleted == 3
    assert_warehouse_equals_source(engine, sandbox)


def test_a_mass_deletion_fails_the_run_until_the_config_accepts_it(defs, instance, engine, sandbox) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(["logikal", "directories"]), dg.AssetKey(["logikal", "projects"])],
    ).success
    project_sync = defs.resolve_job_def(PROJECT_SYNC_JOB)
    project = _project(sandbox)
    assert project_sync.execute_in_process(partition_key=project["id"], instance=instance).success
    doomed = {
        e["id"]
        for phase in sandbox.phases(project["id"])
        for e in sandbox.elevations(project["id"], phase["id"])
    }
    for elevation in doomed:
        sandbox.delete_elevation(elevation)

    refused = project_sync.execute_in_process(
        partition_key=project["id"], instance=instance, raise_on_error=False
    )
    assert not refused.success
    (failure,) = [event for event in refused.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    message = (error.cause or error).message
    alert = error_summary(error)  # what the run-failure alert quotes
    assert f"4 of 4 elevations of LogiKal project {project['name']!r} ({project['id']})" in alert
    assert hint_for(alert, "logikal").kind == "deletion limit"
    assert f"4 of 4 elevations of LogiKal project {project['name']!r} ({project['id']})" in message
    assert marked_deleted(engine) == NOTHING_DELETED

    accept = {"ops": {"logikal_project_contents": {"config": {"allow_mass_deletion": True}}}}
    accepted = project_sync.execute_in_process(
        partition_key=project["id"], instance=instance, run_config=accept
    )
    assert accepted.success
    assert marked_deleted(engine) == {**NOTHING_DELETED, "elevations": doomed}


# -- done when: short listings for 30 % of targets, once -> no live row marked deleted ---------------

BIGGER = {"projects_per_directory": 3, "phases_per_project": 3, "elevations_per_phase": 2}


@pytest.mark.parametrize(
    "sandbox",
    modes_on_sqlite(**BIGGER),
    indirect=True,
)
def test_short_listings_for_30_percent_of_targets_mark_no_live_row_deleted(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    for elevation in sandbox.all_elevation_ids():
        sandbox.change_elevation(elevation)
    directories = sandbox.short_listing_once("projects", share=0.3)
    projects = sandbox.short_listing_once("phases", share=0.3)
    phases = sandbox.short_listing_once("elevations", share=0.3)
    shrunken = sandbox.short_listing_once("elevations", share=0.3, how="shrunken")
    assert len(projects) == 3 and len(phases) == 8

    result = sync_everything(logikal, engine)

    assert sandbox.listing_faults.pending() == []
    assert marked_deleted(engine) == NOTHING_DELETED
    assert_warehouse_equals_source(engine, sandbox)
    assert result.projects.client["relistings"] == len(directories) == 1
    relisted = sum(contents.client["relistings"] for contents in result.contents.values())
    assert relisted == len(projects) + len(set(phases) | set(shrunken))
    assert all(contents.not_synced_because is None for contents in result.contents.values())
    assert sandbox.stats.active_sessions == 0

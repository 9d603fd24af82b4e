"""Parts lists left unfetched past the fail window fail project_contents_fresh, naming the elevations."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from logikal_square_sync.logikal.checks import evaluation, project_staleness
from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.engine.syncs.project_selection import load_project_states
from logikal_square_sync.policies import policies
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import assert_warehouse_equals_source

MINUTE = timedelta(minutes=1)


def _state(engine, project: str):
    with engine.connect() as conn:
        return next(s for s in load_project_states(conn) if s.id == project)


def test_a_locked_parts_list_fails_the_check_after_the_fail_window_even_in_a_dormant_project(
    logikal, engine, sandbox
) -> None:
    policy = policies().logikal.project_sync
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    with logikal.pool() as pool:
        sync_projects(pool, engine)
    project = sandbox.projects()[0]
    phase = sandbox.phases(project["id"])[0]["id"]
    locked = sandbox.elevations(project["id"], phase)[0]
    sandbox.lock_elevation(locked["id"])  # open in LogiKal desktop

    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project["id"])
    assert result.parts_lists_failed == 1
    state = _state(engine, project["id"])
    # Not marked synced, and the failure's time is kept: the sandbox's projects are dormant
    # (48 h windows), the missing parts list is held to the parts lists' 30 min.
    assert state.contents_synced_at is None and state.unfetched_parts_lists == 1
    assert not state.is_active(state.failing_since, policy)
    since = state.failing_since

    assert project_staleness(engine, since + policy.warn_after - MINUTE).passed
    warned = project_staleness(engine, since + policy.warn_after + MINUTE)
    assert [s.id for s in warned.warn] == [project["id"]] and not warned.fail

    report = project_staleness(engine, since + policy.fail_after + MINUTE)
    assert [s.id for s in report.fail] == [project["id"]]
    assert [(u.id, u.name) for u in report.unfetched] == [(locked["id"], locked["name"])]
    assert "in use by another user" in report.unfetched[0].reason
    check = evaluation(report)
    assert not check.passed and check.severity.value == "ERROR"
    assert check.description is not None
    assert "1 parts list unfetched" in check.description and project["name"] in check.description
    unfetched = check.metadata["unfetched_parts_lists"]
    assert isinstance(unfetched, dg.MarkdownMetadataValue)
    table = unfetched.value
    assert locked["id"] in table and locked["name"] in table and "in use" in table
    assert check.metadata["parts_lists_unfetched"].value == 1

    sandbox.lock_elevation(locked["id"], locked=False)
    with logikal.pool() as pool:
        sync_project_contents(pool, engine, project["id"])
    state = _state(engine, project["id"])
    assert state.unfetched_parts_lists == 0 and state.failing_since is None
    assert project_staleness(engine, since + policy.fail_after + MINUTE).passed


def test_a_changed_elevation_left_unfetched_keeps_the_project_unsynced(logikal, engine, sandbox) -> None:
    """The stored older copy stays, but the project's last complete sync does not move."""
    sync_everything(logikal, engine)
    project = sandbox.projects()[1]["id"]
    elevation = sandbox.elevations(project, sandbox.phases(project)[0]["id"])[0]
    synced_at = _state(engine, project).contents_synced_at
    sandbox.change_elevation(elevation["id"])
    sandbox.lock_elevation(elevation["id"])
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)
    assert result.parts_lists_failed == 1
    state = _state(engine, project)
    assert state.contents_synced_at == synced_at and state.unfetched_parts_lists == 1
    report = project_staleness(engine, state.failing_since + 31 * MINUTE)
    assert [s.id for s in report.fail] == [project]
    assert [u.id for u in report.unfetched] == [elevation["id"]]
    assert "not fetched" in report.unfetched[0].reason

    sandbox.lock_elevation(elevation["id"], locked=False)
    with logikal.pool() as pool:
        sync_project_contents(pool, engine, project)
    assert_warehouse_equals_source(engine, sandbox)
    assert _state(engine, project).contents_synced_at > synced_at

"""Nothing lost, nothing wrongly deleted: 404s are confirmed, mass deletions refused, deletions serialized.

Real HTTP against the sandbox, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.engine.walk.deletion_limit import MassDeletionError
from logikal_square_sync.logikal.engine.walk.not_found_confirmation import UnconfirmedNotFoundError
from logikal_square_sync.logikal.engine.walk.result import ProjectContentsResult
from logikal_square_sync.policies import PolicyFileError, load_policies, policies
from logikal_square_sync_tests.logikal.sandbox_runs import Logikal, sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    NOTHING_DELETED,
    assert_warehouse_equals_source,
    marked_deleted,
    warehouse_state,
)

# A held response is released by the test; this only bounds a test that went wrong.
HOLD_LIMIT = 120


def _project_ids(sandbox) -> list[str]:
    return sorted(p["id"] for p in sandbox.projects())


def _clients(result) -> list[dict[str, Any]]:
    return [result.directories.client, result.projects.client, *(c.client for c in result.contents.values())]


def _live_children(engine: sa.Engine, project_id: str) -> dict[str, list[Any]]:
    state = warehouse_state(engine)
    return {
        "phases": [key for key in state["phases"] if key[0] == project_id],
        "elevations": [key for key, value in state["elevations"].items() if value[0] == project_id],
    }


# -- a 404 is confirmed before anything is marked deleted ----------------------------------------


def test_one_off_404s_on_directory_selects_delete_nothing(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    # The root's select and a sub-directory's: taken at their word, the whole tree would go.
    sandbox.inject_fault("POST /directories/select", "not_found", times=2)

    result = sync_everything(logikal, engine)

    assert sandbox.faults.pending() == 0
    assert marked_deleted(engine) == NOTHING_DELETED
    assert_warehouse_equals_source(engine, sandbox)
    assert result.directories.client["confirmations"] == 2
    assert all(contents.not_synced_because is None for contents in result.contents.values())


def test_one_off_404s_in_the_projects_sync_delete_no_project(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    sandbox.inject_fault("POST /directories/select", "not_found", times=3)
    with logikal.pool() as pool:
        result = sync_projects(pool, engine)
    assert result.vanished_project_ids == [] and result.client["confirmations"] == 3
    assert marked_deleted(engine) == NOTHING_DELETED


@pytest.mark.parametrize(
    "endpoint", ["POST /projects/select", "POST /phases/select", "POST /elevations/select"]
)
def test_one_off_404s_in_a_project_sync_delete_nothing(logikal, engine, sandbox, endpoint: str) -> None:
    sync_everything(logikal, engine)
    for elevation in sandbox.all_elevation_ids():
        sandbox.change_elevation(elevation)  # so that every elevation is selected again
    sandbox.inject_fault(endpoint, "not_found", times=2)

    result = sync_everything(logikal, engine)

    assert sandbox.faults.pending() == 0
    assert marked_deleted(engine) == NOTHING_DELETED
    assert_warehouse_equals_source(engine, sandbox)
    assert sum(client["confirmations"] for client in _clients(result)) == 2
    assert result.total("parts_lists_fetched") == len(sandbox.all_elevation_ids())
    assert sandbox.stats.active_sessions == 0


def test_a_select_that_keeps_answering_404_for_a_listed_phase_fails_clearly(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    before = warehouse_state(engine, live_only=False)
    project = _project_ids(sandbox)[0]
    sandbox.inject_fault("POST /phases/select", "not_found", times=20)
    with (
        logikal.pool() as pool,
        pytest.raises(UnconfirmedNotFoundError, match=r"selects answered 404 4 times, yet every listing"),
    ):
        sync_project_contents(pool, engine, project)
    assert warehouse_state(engine, live_only=False) == before
    assert sandbox.stats.active_sessions == 0


def test_a_directory_deleted_during_the_walk_is_marked_after_its_parent_confirms(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    root = next(d["path"] for d in sandbox.directories() if "/" not in d["path"])
    victim = next(d["path"] for d in sandbox.directories() if d["path"].startswith(root + "/"))
    victim_projects = {p["id"] for p in sandbox.projects(victim)}

    def delete_after_listing_the_root(request: httpx.Request, response: httpx.Response) -> None:
        listing = request.method == "GET" and request.url.path.endswith("/directories")
        if listing and victim in response.text and victim in {d["path"] for d in sandbox.directories()}:
            sandbox.delete_directory(victim)

    hooked = Logikal(logikal.url, sandbox)
    hooked.after_each_response(delete_after_listing_the_root)
    with hooked.pool() as pool:
        result = sync_directories(pool, engine)
    assert result.report.deleted == 1 and result.client["confirmations"] == 1
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)
    deleted = marked_deleted(engine)
    assert deleted["directories"] == {victim} and deleted["projects"] == victim_projects


# -- the deletion limit ------------------------------------------------------------------------


def test_a_mass_deletion_is_refused_naming_what_and_how_to_accept_it(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    doomed = _project_ids(sandbox)[:2]
    for project in doomed:
        sandbox.delete_project(project)
    before = warehouse_state(engine, live_only=False)

    with logikal.pool() as pool, pytest.raises(MassDeletionError) as error:
        sync_projects(pool, engine)

    message = str(error.value)
    assert "would mark 2 of 3 live LogiKal projects deleted (67%)" in message
    assert "limit of 20%" in message and "logikal.deletion_limit.max_share" in message
    assert all(project in message for project in doomed)
    assert "ops: {logikal__projects: {config: {allow_mass_deletion: true}}}" in message
    assert marked_deleted(engine) == NOTHING_DELETED and warehouse_state(engine, live_only=False) == before
    assert sandbox.stats.active_sessions == 0

    with logikal.pool() as pool:
        result = sync_projects(pool, engine, allow_mass_deletion=True)
    assert sorted(result.vanished_project_ids) == doomed
    assert marked_deleted(engine)["projects"] == set(doomed)


def test_a_mass_deletion_of_directories_is_refused_too(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    root = next(d["path"] for d in sandbox.directories() if "/" not in d["path"])
    for child in [d["path"] for d in sandbox.directories() if d["path"].startswith(root + "/")]:
        sandbox.delete_directory(child)
    refused = pytest.raises(MassDeletionError, match=r"would mark 2 of 3 live LogiKal directories")
    with logikal.pool() as pool, refused:
        sync_directories(pool, engine)
    assert marked_deleted(engine) == NOTHING_DELETED
    # The limit is a policy: a looser one lets the same run through.
    looser = policies().logikal.deletion_limit.model_copy(update={"max_share": 0.7})
    with logikal.pool() as pool:
        assert sync_directories(pool, engine, deletion_limit=looser).report.deleted == 2


def test_one_deletion_is_never_a_mass_deletion(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)  # 3 projects: 1 of them is 33 %, but within always_allowed
    sandbox.delete_project(_project_ids(sandbox)[0])
    with logikal.pool() as pool:
        assert len(sync_projects(pool, engine).vanished_project_ids) == 1


def test_the_deletion_limit_is_validated(tmp_path: Path) -> None:
    text = (Path(__file__).parents[4] / "logikal_square_sync" / "policies.yaml").read_text()
    assert "max_share: 0.2" in text
    bad = tmp_path / "policies.yaml"
    bad.write_text(text.replace("max_share: 0.2", "max_share: 1.5"))
    with pytest.raises(PolicyFileError, match=r"logikal\.deletion_limit\.max_share: .*less than or equal"):
        load_policies(bad)
    bad.write_text(text.replace("always_allowed: 1", "always_allowed: -1"))
    with pytest.raises(PolicyFileError, match=r"logikal\.deletion_limit\.always_allowed"):
        load_policies(bad)


# -- a deletion and a project's contents sync, interleaved ----------------------------------------


def _hold_the_last_listing(
    logikal: Logikal, sandbox, project_id: str
) -> tuple[threading.Event, threading.Event]:
    """The contents sync's last GET /elevations of `project_id` waits, its answer read, until released."""
    held, release = threading.Event(), threading.Event()
    phases = len(sandbox.phases(project_id))
    seen = []

    def hold(request: httpx.Request, response: httpx.Response) -> None:
        if request.method == "GET" and request.url.path.endswith("/elevations"):
            seen.append(request)
            if len(seen) == phases:
                held.set()
                assert release.wait(HOLD_LIMIT), "the test never released the held listing"

    logikal.after_each_response(hold)
    return held, release


def _in_thread(target) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as error:  # noqa: BLE001 - re-raised by the test
            outcome["error"] = error

    thread = threading.Thread(target=run, name="contents-sync", daemon=True)
    thread.start()
    return thread, outcome


def test_a_project_deleted_while_its_listing_is_in_flight_keeps_no_live_children(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    project = _project_ids(sandbox)[0]
    phase = sandbox.phases(project)[1]["id"]
    added = sandbox.add_elevation(project, phase, "Late window")
    contents = Logikal(logikal.url, sandbox)
    held, release = _hold_the_last_listing(contents, sandbox, project)

    def sync_contents() -> ProjectContentsResult:
        with contents.pool() as pool:
            return sync_project_contents(pool, engine, project)

    thread, outcome = _in_thread(sync_contents)
    try:
        assert held.wait(HOLD_LIMIT)
        # The contents sync holds a listing of the project (with the new elevation) that the
        # source has since deleted, and the projects sync marks it deleted first.
        sandbox.delete_project(project)
        with logikal.pool() as pool:
            assert sync_projects(pool, engine).vanished_project_ids == [project]
    finally:
        release.set()
        thread.join(HOLD_LIMIT)
    if "error" in outcome:
        raise outcome["error"]
    result: ProjectContentsResult = outcome["result"]

    assert result.deleted_at is not None and "deleted at the source" in (result.not_synced_because or "")
    assert _live_children(engine, project) == {"phases": [], "elevations": []}
    assert added not in warehouse_state(engine, live_only=False)["elevations"]
    assert marked_deleted(engine)["projects"] == {project}
    assert_warehouse_equals_source(engine, sandbox)
    assert sandbox.stats.active_sessions == 0


@pytest.fixture
def hold_after_locking(engine: sa.Engine) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first statement that locks a project's row, in the thread named contents-sync, waits after it."""
    locked, release = threading.Event(), threading.Event()

    def after(conn, cursor, statement: str, parameters, context, executemany) -> None:
        if (
            threading.current_thread().name == "contents-sync"
            and "FOR UPDATE" in statement
            and not locked.is_set()
        ):
            locked.set()
            assert release.wait(HOLD_LIMIT), "the test never released the locked transaction"

    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield locked, release
    finally:
        release.set()
        sa.event.remove(engine, "after_cursor_execute", after)


def _waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE logikal_projects%'"
                )
            ).scalar()
        )


def test_marking_a_project_deleted_waits_for_its_contents_writer(
    logikal, engine, sandbox, hold_after_locking
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): no two transactions to interleave")
    locked, release = hold_after_locking
    sync_everything(logikal, engine)
    project = _project_ids(sandbox)[0]
    added = sandbox.add_elevation(project, sandbox.phases(project)[0]["id"], "Late window")

    def sync_contents() -> ProjectContentsResult:
        with logikal.pool() as pool:
            return sync_project_contents(pool, engine, project)

    contents_thread, contents = _in_thread(sync_contents)
    assert locked.wait(HOLD_LIMIT)  # the contents writer holds the project's row, mid-transaction
    sandbox.delete_project(project)

    def mark_deleted() -> Any:
        with logikal.pool() as pool:
            return sync_projects(pool, engine)

    projects_thread = threading.Thread(target=lambda: projects.update(result=mark_deleted()), daemon=True)
    projects: dict[str, Any] = {}
    projects_thread.start()
    deadline = time.monotonic() + HOLD_LIMIT
    while not _waiting_on_a_lock(engine):  # a condition to reach, not a race against a threshold
        assert time.monotonic() < deadline and projects_thread.is_alive(), "the deletion never waited"
        time.sleep(0.02)
    release.set()
    contents_thread.join(HOLD_LIMIT)
    projects_thread.join(HOLD_LIMIT)
    if "error" in contents:
        raise contents["error"]

    # The listing committed first (with the new elevation), then the deletion marked all of it.
    assert projects["result"].vanished_project_ids == [project]
    assert warehouse_state(engine, live_only=False)["elevations"][added][0] == project
    assert _live_children(engine, project) == {"phases": [], "elevations": []}
    # Whether the contents sync's later writes (the elevation gone at the source, its bookkeeping)
    # came before or after the marking depends on who gets the row next; either way nothing is live.
    assert_warehouse_equals_source(engine, sandbox)


def test_a_project_deleted_during_its_listing_is_reported_gone_and_nothing_written(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    project = _project_ids(sandbox)[0]
    before = warehouse_state(engine, live_only=False)

    def delete_after_the_first_phase(request: httpx.Request, response: httpx.Response) -> None:
        listing = request.method == "GET" and request.url.path.endswith("/elevations")
        if listing and project in {p["id"] for p in sandbox.projects()}:
            sandbox.delete_project(project)

    logikal.after_each_response(delete_after_the_first_phase)
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)

    # The next phase's select is refused (the project no longer exists under the session); the
    # walk from the root does not find the project, so the listing is not written half-way.
    assert result.gone_at_source and result.client["confirmations"] == 1
    assert warehouse_state(engine, live_only=False) == before
    assert sandbox.stats.active_sessions == 0

"""Every session rule of the MBIOE API as the client meets it, against the sandbox over HTTP."""

from __future__ import annotations

import hashlib
import threading

import pytest

from logikal_square_sync.logikal.engine.client.errors import (
    LogikalConflictError,
    LogikalError,
    LogikalNotFoundError,
    LogikalWrongStateError,
)
from logikal_square_sync.logikal.engine.client.navigation import ROOT, State, Target
from logikal_square_sync.logikal.engine.client.session import ClientStats, LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.walk.task_runner import Task, run_tasks

MISSING = "00000000-0000-0000-0000-0000000000ff"


@pytest.fixture
def session(logikal):
    session = LogikalSession(logikal.settings())
    session.login()
    yield session
    session.logout()


@pytest.fixture
def tree(sandbox):
    """A project with two phases of two elevations, and where it lives."""
    project = sorted(sandbox.projects(), key=lambda p: p["id"])[0]["id"]
    directory = sandbox.project_directory(project)
    phases = [phase["id"] for phase in sandbox.phases(project)]
    elevations = [[e["id"] for e in sandbox.elevations(project, phase)] for phase in phases]
    return directory, project, phases, elevations


def test_login_starts_at_the_root_and_lists_the_root_directories(session, sandbox) -> None:
    assert session.cursor.state is State.ROOT
    roots = [d["path"] for d in sandbox.directories() if "/" not in d["path"]]
    assert [d.path for d in session.list_directories()] == roots


def test_any_directory_can_be_selected_by_path_from_directory_state(session, sandbox) -> None:
    root = sandbox.directories()[0]["path"]
    session.select_directory(root)
    children = session.list_directories()
    assert children and all(child.path.startswith(root + "/") for child in children)
    session.select_directory(children[0].path)  # down ...
    assert session.list_directories() == []
    session.select_directory(root)  # ... and back up, still in directory state
    assert [c.path for c in session.list_directories()] == [c.path for c in children]
    assert session.cursor.state is State.DIRECTORY and session.cursor.directory == root


def test_projects_are_listed_only_in_directory_state(session, tree) -> None:
    directory, project, _, _ = tree
    with pytest.raises(LogikalWrongStateError, match=r"GET /projects is not allowed .* in root state"):
        session.list_projects()
    session.select_directory(directory)
    assert project in {p.id for p in session.list_projects()}
    session.select_project(project)
    with pytest.raises(LogikalWrongStateError, match=r"project state \(project .* in directory") as error:
        session.list_projects()
    assert error.value.status == 405 and "no way back up except a new login" in str(error.value)


def test_nothing_leads_back_up_from_a_project(session, tree, sandbox) -> None:
    directory, project, _, _ = tree
    session.select_directory(directory)
    session.select_project(project)
    with pytest.raises(
        LogikalConflictError, match=r"POST /directories/select refused \(409\) .* project state"
    ):
        session.select_directory(directory)
    other = next(p["id"] for p in sandbox.projects() if p["id"] != project)
    with pytest.raises(LogikalConflictError, match="POST /projects/select"):
        session.select_project(other)
    assert session.cursor.project_id == project  # a refused select leaves the cursor where it was


def test_sibling_phases_in_one_session_but_not_from_an_elevation(session, tree) -> None:
    directory, project, phases, elevations = tree
    session.select_directory(directory)
    session.select_project(project)
    with pytest.raises(LogikalWrongStateError, match="GET /elevations"):
        session.list_elevations()
    assert [p.id for p in session.list_phases()] == phases
    for phase, expected in zip(phases, elevations, strict=True):
        session.select_phase(phase)
        assert [p.id for p in session.list_phases()] == phases  # listing phases works in phase state
        assert [e.id for e in session.list_elevations()] == expected
    session.select_elevation(elevations[-1][0])
    with pytest.raises(LogikalConflictError, match=r"POST /phases/select refused \(409\) .* elevation state"):
        session.select_phase(phases[0])
    with pytest.raises(LogikalWrongStateError, match="GET /phases"):
        session.list_phases()


def test_parts_lists_need_elevation_state_and_match_the_source(session, tree, sandbox) -> None:
    directory, project, phases, elevations = tree
    session.select_directory(directory)
    session.select_project(project)
    session.select_phase(phases[0])
    with pytest.raises(LogikalWrongStateError, match="parts-list .* phase state"):
        session.parts_list()
    for elevation in elevations[0]:  # siblings one after another
        session.select_elevation(elevation)
        assert session.cursor.state is State.ELEVATION
        content = session.parts_list()
        assert (
            hashlib.sha256(content).digest() == hashlib.sha256(sandbox.parts_list_bytes(elevation)).digest()
        )
    with pytest.raises(LogikalNotFoundError, match=f"elevation '{elevations[1][0]}' no longer exists"):
        session.select_elevation(elevations[1][0])  # not in this phase


@pytest.mark.parametrize("sandbox", [{"allow_sibling_elevation_select": False}], indirect=True)
def test_a_server_may_refuse_sibling_elevation_selects(session, tree) -> None:
    directory, project, phases, elevations = tree
    session.goto(Target(directory, project, phases[0], for_elevations=True), sibling_elevations=False)
    session.select_elevation(elevations[0][0])
    with pytest.raises(LogikalConflictError, match="elevation state"):
        session.select_elevation(elevations[0][1])


def test_a_select_of_something_gone_is_not_found(session, tree) -> None:
    directory, project, _, _ = tree
    with pytest.raises(LogikalNotFoundError, match="directory 'Nowhere' no longer exists at the source"):
        session.select_directory("Nowhere")
    session.select_directory(directory)
    with pytest.raises(LogikalNotFoundError, match=f"project '{MISSING}'"):
        session.select_project(MISSING)
    session.select_project(project)
    with pytest.raises(LogikalNotFoundError, match=f"phase '{MISSING}'"):
        session.select_phase(MISSING)


def test_an_expired_token_is_replaced_and_the_selection_replayed(logikal, tree, sandbox) -> None:
    directory, project, phases, elevations = tree
    stats = ClientStats()
    session = LogikalSession(logikal.settings(), stats)
    session.login()
    try:
        session.goto(Target(directory, project, phases[1]), sibling_elevations=True)
        session.select_elevation(elevations[1][1])
        sandbox.expire_token()
        content = session.parts_list()  # 401, login, select dir, project, phase, elevation, retry
    finally:
        session.logout()
    assert content == sandbox.parts_list_bytes(elevations[1][1])
    assert stats.reauthentications == 1 and stats.logins == 2
    assert stats.calls["POST /elevations/select"] == 2 and stats.calls["POST /projects/select"] == 2
    assert sandbox.stats.active_sessions == 0


def test_the_pool_lends_the_best_placed_session_and_logs_everything_out(logikal, tree, sandbox) -> None:
    directory, project, phases, _ = tree
    with SessionPool(logikal.settings(), size=2) as pool:
        first = pool.acquire(Target(directory, project, phases[1]))
        first.goto(Target(directory, project, phases[1]), sibling_elevations=True)
        pool.release(first)
        # Any phase of the project is one select away: the same session, no new login.
        again = pool.acquire(Target(directory, project, phases[0]))
        assert again is first
        second = pool.acquire(Target(directory))  # the first is lent: a second login
        assert second is not first and pool.stats.logins == 2
        pool.release(again)
        pool.release(second)
        # A session inside a project cannot go to a directory: the one in directory state can.
        assert pool.acquire(Target(directory)) is second
        pool.release(second)
    assert sandbox.stats.logouts == 2 and sandbox.stats.active_sessions == 0


def test_a_failing_task_stops_the_run_and_every_session_is_logged_out(logikal, sandbox) -> None:
    started = threading.Event()

    def fail(session, queue) -> None:
        session.goto(Target(ROOT), sibling_elevations=True)
        started.set()
        raise LogikalError("boom")

    def fine(session, queue) -> None:
        session.goto(Target(ROOT), sibling_elevations=True)
        session.list_directories()

    with SessionPool(logikal.settings(), size=3) as pool, pytest.raises(LogikalError, match="boom"):
        run_tasks(pool, [Task(Target(ROOT), 20.0, fail), Task(Target(ROOT), 20.0, fine)])
    assert started.is_set()
    assert sandbox.stats.active_sessions == 0 and sandbox.stats.logins == sandbox.stats.logouts

"""A select a gateway answers with a 5xx after the server applied it is replayed, never retried blindly.

The sandbox applies the select (the session's cursor moves) and then answers
502 or 504 with a gateway's page. A blind retry would be sent from the moved
cursor and answered 405 or 409: read as "siblings refused" (kept 7 days), a
lock, or a project gone.
"""

from __future__ import annotations

import pytest

from logikal_square_sync.logikal.engine.client.errors import LogikalAnswerLostError
from logikal_square_sync.logikal.engine.client.navigation import State, Target
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.store.contents import load_sibling_refusal
from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import assert_warehouse_equals_source, warehouse_state

SELECTS = (
    "POST /directories/select",
    "POST /projects/select",
    "POST /phases/select",
    "POST /elevations/select",
)

# Every select target's first select is applied and then answered 502 (504 in one mode), with
# sibling elevation selects allowed and refused either way.
APPLIED_THEN_5XX = [
    pytest.param({"select_applied_error_status": 502}, id="siblings-allowed-502"),
    pytest.param({"select_applied_error_status": 504, "select_applied_error_share": 0.5}, id="half-504"),
    pytest.param(
        {
            "select_applied_error_status": 502,
            "allow_sibling_elevation_select": False,
            "sibling_refusal_status": 409,
        },
        id="siblings-refused-409",
    ),
    pytest.param(
        {
            "select_applied_error_status": 502,
            "allow_sibling_elevation_select": False,
            "sibling_refusal_status": 405,
        },
        id="siblings-refused-405",
    ),
]


def _answers(sandbox, status: int) -> dict[str, int]:
    responses = sandbox.stats.responses
    return {select: responses.get(f"{select} {status}", 0) for select in SELECTS}


@pytest.mark.parametrize("sandbox", APPLIED_THEN_5XX, indirect=True)
def test_selects_applied_then_answered_5xx_are_replayed_and_the_warehouse_is_exact(
    logikal, engine, sandbox
) -> None:
    config = sandbox.config
    status = config.select_applied_error_status

    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    assert result.total("parts_lists_failed") == 0
    failed = _answers(sandbox, status)
    assert failed["POST /projects/select"] >= 1 and failed["POST /elevations/select"] >= 1, failed
    lost = sum(c.client["lost_answers"] for c in result.contents.values())
    lost += result.directories.client["lost_answers"] + result.projects.client["lost_answers"]
    assert lost == sum(failed.values())
    # No select was ever sent from a cursor the client did not know: the only refusals are
    # sibling elevation selects, where the server refuses them.
    refusals = {code: {k: v for k, v in _answers(sandbox, code).items() if v} for code in (405, 409)}
    with engine.connect() as conn:
        learned = load_sibling_refusal(conn)
    if config.allow_sibling_elevation_select:
        assert refusals == {405: {}, 409: {}}
        assert learned is None
        assert not any(c.sibling_elevation_select.startswith("refused") for c in result.contents.values())
    else:
        refused = config.sibling_refusal_status
        assert set(refusals[refused]) == {"POST /elevations/select"}
        assert refusals[405 if refused == 409 else 409] == {}
        # A clean refusal, confirmed from phase state, is still learned and kept.
        assert learned is not None and learned.status == refused
    # Every server session given up was logged out.
    assert sandbox.stats.active_sessions == 0 and sandbox.stats.logins == sandbox.stats.logouts


def test_a_5xx_on_a_select_the_server_applied_moves_the_session_through_a_new_login(logikal, sandbox) -> None:
    directory = sandbox.directories()[1]["path"]
    project = sandbox.projects(directory)[0]["id"]
    session = LogikalSession(logikal.settings())
    try:
        session.login()
        session.goto(Target(directory), sibling_elevations=True)
        sandbox.fail_select_after_applying(project, status=504)

        session.select_project(project)

        assert session.cursor.state is State.PROJECT and session.cursor.project_id == project
        assert session.stats.lost_answers == 1 and session.stats.logins == 2 and session.stats.logouts == 1
        responses = sandbox.stats.responses
        assert responses["POST /projects/select 504"] == 1
        assert responses["POST /projects/select 200"] == 1  # the replay, from directory state
        assert "POST /projects/select 409" not in responses
        assert [p.id for p in session.list_phases()] == [p["id"] for p in sandbox.phases(project)]
    finally:
        session.logout()
    assert sandbox.stats.active_sessions == 0


def test_a_select_answered_5xx_every_time_fails_clearly_and_marks_nothing(logikal, engine, sandbox) -> None:
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    before = warehouse_state(engine, live_only=False)
    sandbox.inject_fault("POST /directories/select", "applied_error", times=50, status=502)
    with (
        logikal.pool() as pool,
        pytest.raises(LogikalAnswerLostError, match=r"answer was lost 4 times.*last: HTTP 502"),
    ):
        sync_projects(pool, engine)
    assert warehouse_state(engine, live_only=False) == before
    # Never retried blindly: each 502 was followed by a logout, a login and the replay.
    assert sandbox.stats.responses["POST /directories/select 502"] == 4
    assert sandbox.stats.active_sessions == 0 and sandbox.stats.logins == sandbox.stats.logouts

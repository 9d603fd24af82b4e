"""Every fault either recovers or fails clearly, and nothing synced is lost."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from logikal_square_sync.common.http import RetriesExhausted
from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.logikal.engine.client.errors import LogikalAnswerLostError, LogikalAuthError
from logikal_square_sync.logikal.engine.client.parts_list_parser import FETCH_FAILED, PARSED
from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    assert_warehouse_equals_source,
    table_rows,
    warehouse_state,
)

PARTS_LIST = "/elevations/selected/parts-list"


def _project_ids(sandbox) -> list[str]:
    return sorted(p["id"] for p in sandbox.projects())


def test_an_expired_token_logs_in_again_and_resumes_where_it_was(logikal, engine, sandbox) -> None:
    expired: list[str] = []

    def expire_after_first_parts_list(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path.endswith(PARTS_LIST) and not expired:
            expired.append(request.headers["authorization"])
            sandbox.expire_token()  # every live session, mid-walk

    logikal.after_each_response(expire_after_first_parts_list)
    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    reauthentications = sum(c.client["reauthentications"] for c in result.contents.values())
    assert reauthentications >= 1
    assert result.total("parts_lists_failed") == 0
    assert sandbox.stats.active_sessions == 0


def test_transient_server_errors_and_cut_bodies_are_retried(logikal, engine, sandbox) -> None:
    sandbox.inject_server_errors("POST /auth", times=2, status=503)
    sandbox.inject_server_errors("GET /phases", times=1)
    sandbox.inject_server_errors(f"GET {PARTS_LIST}", times=2, status=502)
    sandbox.inject_fault("GET /elevations", "truncate", times=2)
    sandbox.inject_fault("GET /directories", "truncate")

    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    retries = (
        sum(c.client["retries"] for c in result.contents.values()) + result.directories.client["retries"]
    )
    retries += result.projects.client["retries"]
    assert retries >= 8
    assert sandbox.faults.pending() == 0


def test_a_server_that_keeps_failing_fails_the_sync_clearly_and_loses_nothing(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    before = warehouse_state(engine, live_only=False)
    project = _project_ids(sandbox)[0]
    sandbox.change_elevation(sandbox.elevations(project, sandbox.phases(project)[0]["id"])[0]["id"])
    sandbox.inject_server_errors("GET /phases", times=10)
    logikal.max_attempts = 2

    with logikal.pool() as pool, pytest.raises(RetriesExhausted, match=r"GET /phases still failing after 2"):
        sync_project_contents(pool, engine, project)

    assert warehouse_state(engine, live_only=False) == before
    assert sandbox.stats.active_sessions == 0  # logged out, also on failure


def test_a_locked_elevation_is_recorded_and_fetched_once_unlocked(logikal, engine, sandbox) -> None:
    locked = sandbox.all_elevation_ids()[0]
    sandbox.lock_elevation(locked)

    result = sync_everything(logikal, engine)

    assert result.total("parts_lists_failed") == 1
    assert any(
        locked in line and "in use by another user" in line
        for c in result.contents.values()
        for line in c.failures
    )
    row = next(r for r in table_rows(engine, t.logikal_parts_lists) if r["elevation_id"] == locked)
    assert row["parse_status"] == FETCH_FAILED and row["sha256"] is None and "in use" in row["parse_error"]
    assert result.total("parts_lists_fetched") == len(sandbox.all_elevation_ids()) - 1

    sandbox.lock_elevation(locked, locked=False)
    sandbox.reset_stats()
    sync_everything(logikal, engine)
    assert sandbox.stats.parts_lists_served == 1
    assert_warehouse_equals_source(engine, sandbox)
    row = next(r for r in table_rows(engine, t.logikal_parts_lists) if r["elevation_id"] == locked)
    assert row["parse_status"] == PARSED


def test_a_lock_on_a_changed_elevation_keeps_the_stored_copy(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    elevation = sandbox.all_elevation_ids()[2]
    stored = warehouse_state(engine)["parts_lists"][elevation]
    sandbox.change_elevation(elevation)
    sandbox.lock_elevation(elevation)

    result = sync_everything(logikal, engine)

    assert result.total("parts_lists_failed") == 1
    assert warehouse_state(engine)["parts_lists"][elevation] == stored
    sandbox.lock_elevation(elevation, locked=False)
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)


REFUSING = [
    pytest.param({"allow_sibling_elevation_select": False, "sibling_refusal_status": 409}, id="refused-409"),
    pytest.param({"allow_sibling_elevation_select": False, "sibling_refusal_status": 405}, id="refused-405"),
]


@pytest.mark.parametrize("sandbox", REFUSING, indirect=True)
def test_without_sibling_selects_every_parts_list_gets_its_own_login(logikal, engine, sandbox) -> None:
    status = sandbox.config.sibling_refusal_status
    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    assert result.total("parts_lists_failed") == 0
    # The first project's pool learns it from the refused selects of the sessions already under
    # way (at most one per phase); the warehouse keeps the finding, so the other projects plan a
    # session per parts list from the start and never try a sibling select.
    first, *others = sorted(result.contents)
    refused = sandbox.stats.responses[f"POST /elevations/select {status}"]
    assert 1 <= refused <= sandbox.config.phases_per_project
    assert result.contents[first].sibling_elevation_select.startswith(f"refused ({status}), learned")
    for project in others:
        known = result.contents[project].sibling_elevation_select
        assert known.startswith(f"refused ({status}), known since")
    for contents in result.contents.values():
        assert contents.client["logins"] >= contents.parts_lists_fetched
    assert sandbox.stats.active_sessions == 0


@pytest.mark.parametrize("sandbox", REFUSING, indirect=True)
def test_a_known_refusal_is_tried_again_after_a_week(logikal, engine, sandbox, pinned_clock) -> None:
    status = sandbox.config.sibling_refusal_status
    sync_everything(logikal, engine)
    project = _project_ids(sandbox)[0]
    for phase in sandbox.phases(project):
        for elevation in sandbox.elevations(project, phase["id"]):
            sandbox.change_elevation(elevation["id"])
    pinned_clock.shift(timedelta(days=6))
    sandbox.reset_stats()
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)
    assert result.sibling_elevation_select.startswith(f"refused ({status}), known since")
    assert sandbox.stats.responses.get(f"POST /elevations/select {status}", 0) == 0
    pinned_clock.shift(timedelta(days=2))
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project, refetch_parts_lists=True)
    assert result.sibling_elevation_select.startswith(f"refused ({status}), learned in this run")
    assert sandbox.stats.responses[f"POST /elevations/select {status}"] >= 1
    assert_warehouse_equals_source(engine, sandbox)


@pytest.mark.parametrize("sandbox", REFUSING, indirect=True)
def test_a_lock_is_not_mistaken_for_refused_sibling_selects(logikal, engine, sandbox) -> None:
    project = _project_ids(sandbox)[0]
    phase = sandbox.phases(project)[0]["id"]
    first, second = (e["id"] for e in sandbox.elevations(project, phase))
    sandbox.lock_elevation(second)
    result = sync_everything(logikal, engine)
    assert result.contents[project].parts_lists_failed == 1
    assert any(second in line for line in result.contents[project].failures)
    assert first in warehouse_state(engine)["parts_lists"]


def test_wrong_credentials_fail_clearly_without_leaking_the_password(logikal, engine, sandbox) -> None:
    logikal.password = "not-the-secret"
    with logikal.pool() as pool, pytest.raises(LogikalAuthError) as error:
        sync_directories(pool, engine)
    assert "refused the login of user 'sandbox'" in str(error.value)
    assert "not-the-secret" not in str(error.value) and "not-the-secret" not in repr(logikal.settings())


def test_a_login_slower_than_the_timeout_fails_clearly(logikal, engine, sandbox) -> None:
    sandbox.set_login_delay(0.5)
    logikal.timeout_seconds, logikal.max_attempts = 0.1, 2
    with (
        logikal.pool() as pool,
        pytest.raises(
            RetriesExhausted,
            match=r"POST /auth still failing.*timeout: 127\.0\.0\.1:\d+ .* no answer within 0\.1 s",
        ),
    ):
        sync_directories(pool, engine)
    sandbox.set_login_delay(0)
    logikal.timeout_seconds = 10
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)


def test_a_malformed_record_stops_that_project_naming_the_record_and_field(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    before = warehouse_state(engine, live_only=False)
    project = _project_ids(sandbox)[0]

    def garble(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path.endswith("/elevations") and request.method == "GET":
            body = json.loads(response.content)
            body["data"][1]["changedDate"] = "yesterday"
            response._content = json.dumps(body).encode()

    logikal.after_each_response(garble)
    with logikal.pool() as pool, pytest.raises(MalformedRecordError) as error:
        sync_project_contents(pool, engine, project)
    message = str(error.value)
    assert "GET /elevations" in message and "record 1" in message and "changedDate" in message
    assert "Unix seconds" in message
    assert warehouse_state(engine, live_only=False) == before
    assert sandbox.stats.active_sessions == 0


def test_an_elevation_deleted_between_listing_and_select_is_marked_deleted(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project = _project_ids(sandbox)[0]
    phase = sandbox.phases(project)[0]["id"]
    victim, survivor = (e["id"] for e in sandbox.elevations(project, phase))
    sandbox.change_elevation(victim)
    sandbox.change_elevation(survivor)

    def delete_after_listing(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path.endswith("/elevations") and victim in response.text:
            sandbox.delete_elevation(victim)

    logikal.after_each_response(delete_after_listing)
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)

    assert result.elevations.deleted == 1 and result.parts_lists_fetched == 1
    assert victim not in warehouse_state(engine)["elevations"]
    assert_warehouse_equals_source(engine, sandbox)


def test_a_project_gone_from_its_directory_is_reported_not_failed(logikal, engine, sandbox) -> None:
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    with logikal.pool() as pool:
        sync_projects(pool, engine)
    before = warehouse_state(engine, live_only=False)
    project = _project_ids(sandbox)[0]
    sandbox.delete_project(project)
    # Never synced: the pool logs in three sessions at once, and all of them are logged out.
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)
    assert result.gone_at_source and "deleted or moved at the source" in (result.not_synced_because or "")
    assert result.client["confirmations"] == 1  # the directory's listing, in a fresh session
    assert warehouse_state(engine, live_only=False) == before  # the next projects run records it
    assert sandbox.stats.active_sessions == 0 and sandbox.stats.logins == sandbox.stats.logouts


def _select_refusals(sandbox) -> dict[str, int]:
    return {
        key: count
        for key, count in sandbox.stats.responses.items()
        if "/select" in key and key.rsplit(" ", 1)[1] in ("405", "409")
    }


def test_a_select_whose_answer_was_lost_is_replayed_in_a_new_session(logikal, engine, sandbox) -> None:
    # The project select of the listing session and of the sessions logging in beside it (a
    # first sync prewarms the whole pool) is applied by the server and its answer lost.
    sandbox.inject_fault("POST /projects/select", "lost_response", times=3)
    sandbox.inject_fault("POST /directories/select", "lost_response", times=2)
    sandbox.inject_fault("POST /elevations/select", "lost_response", times=2)

    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    assert sandbox.faults.pending() == 0
    assert sandbox.stats.responses["POST /projects/select lost"] == 3
    # Never a blind retry from the state the lost select left behind.
    assert _select_refusals(sandbox) == {}
    lost = sum(c.client["lost_answers"] for c in result.contents.values())
    lost += result.directories.client["lost_answers"] + result.projects.client["lost_answers"]
    assert lost == 7
    # Each replay ended the session it gave up, so no server session is left behind.
    assert sandbox.stats.active_sessions == 0 and sandbox.stats.logins == sandbox.stats.logouts


def test_a_server_that_loses_every_select_answer_fails_clearly(logikal, engine, sandbox) -> None:
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    before = warehouse_state(engine, live_only=False)
    sandbox.inject_fault("POST /directories/select", "lost_response", times=50)
    with logikal.pool() as pool, pytest.raises(LogikalAnswerLostError, match="answer was lost 4 times"):
        sync_projects(pool, engine)
    assert warehouse_state(engine, live_only=False) == before
    assert sandbox.stats.active_sessions == 0 and sandbox.stats.logins == sandbox.stats.logouts


def test_a_lost_login_answer_is_retried_and_leaves_only_the_session_nobody_learned_of(
    logikal, engine, sandbox
) -> None:
    sandbox.inject_fault("POST /auth", "lost_response")
    with logikal.pool() as pool:
        result = sync_directories(pool, engine)
    assert result.client["retries"] == 1 and result.client["logins"] == 1
    assert set(warehouse_state(engine)["directories"]) == {d["path"] for d in sandbox.directories()}
    # The server opened a session for the lost answer; without its token nothing can end it.
    assert sandbox.stats.logins == 2 and sandbox.stats.logouts == 1 and sandbox.stats.active_sessions == 1

"""How a project sync spreads its work over the pool: logins, sessions and calls against the sandbox."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.logikal.engine.store.contents import save_sibling_refusal
from logikal_square_sync.logikal.engine.store.writes import write_transaction
from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync_tests.benchmarks.logikal_force_sync import PHASE_SIZES, build_project
from logikal_square_sync_tests.logikal.source_truth import source_truth, warehouse_state

PARTS_LIST = "/elevations/selected/parts-list"


def _assert_project_synced(engine, sandbox, project: str) -> None:
    """The project's elevations and parts lists in the warehouse are the source's."""
    ids = {e["id"] for phase in sandbox.phases(project) for e in sandbox.elevations(project, phase["id"])}
    truth, stored = source_truth(sandbox), warehouse_state(engine)
    for kind in ("elevations", "parts_lists"):
        assert {k: v for k, v in stored[kind].items() if k in ids} == {
            k: v for k, v in truth[kind].items() if k in ids
        }, kind


def _discover(logikal, engine) -> None:
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    with logikal.pool() as pool:
        sync_projects(pool, engine)


def _tokens_fetching(logikal) -> Counter[str]:
    """Parts lists served, by the session (bearer token) that fetched them."""
    fetched: Counter[str] = Counter()

    def count(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path.endswith(PARTS_LIST) and response.is_success:
            fetched[request.headers["authorization"]] += 1

    logikal.after_each_response(count)
    return fetched


def test_a_first_sync_puts_every_session_of_the_pool_to_work_with_one_login_each(
    logikal, engine, sandbox
) -> None:
    project = build_project(sandbox)  # 6 + 6 + 5 elevations, never synced
    _discover(logikal, engine)
    # Latencies at a fifth (a login 0.9-1.8 s, a parts list 0.2-0.6 s): the sessions log in side
    # by side and join while the work lasts, as at full latency.
    sandbox.latency.time_scale = 0.2
    sandbox.reset_stats()
    fetched = _tokens_fetching(logikal)

    with logikal.pool(4) as pool:
        result = sync_project_contents(pool, engine, project)

    assert result.parts_lists_fetched == sum(PHASE_SIZES) and result.parts_lists_failed == 0
    stats = sandbox.stats
    # Four logins at the start, each session then on parts lists: the fourth joined a phase of six.
    assert stats.logins == 4 and len(fetched) == 4
    assert stats.max_concurrent_sessions == 4
    # Each phase selected and listed once for the listing; GET /phases once.
    assert stats.calls["GET /phases"] == 1 and stats.calls["GET /elevations"] == len(PHASE_SIZES)
    assert stats.calls["POST /elevations/select"] == sum(PHASE_SIZES)
    _assert_project_synced(engine, sandbox, project)
    assert stats.active_sessions == 0


@pytest.mark.parametrize("sandbox", [{"allow_sibling_elevation_select": False}], indirect=True)
def test_without_sibling_selects_a_first_sync_logs_in_once_per_parts_list(logikal, engine, sandbox) -> None:
    project = build_project(sandbox)  # 6 + 6 + 5 elevations, never synced
    _discover(logikal, engine)
    with write_transaction(engine) as conn:  # learned by an earlier run, as sync_state keeps it
        save_sibling_refusal(conn, 409, utc_now())
    sandbox.reset_stats()

    with logikal.pool(4) as pool:
        result = sync_project_contents(pool, engine, project)

    assert result.parts_lists_fetched == sum(PHASE_SIZES)
    stats = sandbox.stats
    # The rules' minimum: a login per parts list (the sessions that listed a phase fetch one each).
    assert stats.logins == sum(PHASE_SIZES) and stats.max_concurrent_sessions <= 4
    assert stats.responses.get("POST /elevations/select 409", 0) == 0  # never tried from a sibling
    _assert_project_synced(engine, sandbox, project)


def test_a_resync_logs_in_once_per_phase_with_changes(logikal, engine, sandbox) -> None:
    project = build_project(sandbox)  # 6 + 6 + 5 elevations, never synced
    _discover(logikal, engine)
    with logikal.pool(4) as pool:
        sync_project_contents(pool, engine, project)
    first, second, _ = sandbox.phases(project)
    for phase in (first, second):
        sandbox.change_elevation(sandbox.elevations(project, phase["id"])[0]["id"])
    sandbox.reset_stats()

    with logikal.pool(4) as pool:
        result = sync_project_contents(pool, engine, project)

    assert result.parts_lists_fetched == 2 and result.parts_lists_skipped == sum(PHASE_SIZES) - 2
    # The listing session fetches in one of the phases; the other phase needs a login of its own.
    assert sandbox.stats.logins == 2
    _assert_project_synced(engine, sandbox, project)


def test_a_resync_of_a_project_of_many_phases_stays_one_login(logikal, engine, sandbox) -> None:
    directory = sandbox.directories()[0]["path"]
    project = sandbox.add_project(directory, "PHASES30", phases=30, elevations_per_phase=1)
    _discover(logikal, engine)
    with logikal.pool(4) as pool:
        sync_project_contents(pool, engine, project)
    sandbox.reset_stats()

    with logikal.pool(4) as pool:
        result = sync_project_contents(pool, engine, project)

    # Thirty listings take one session: no listing is worth a login of its own.
    assert result.parts_lists_fetched == 0 and sandbox.stats.logins == 1
    assert sandbox.stats.calls["GET /elevations"] == 30

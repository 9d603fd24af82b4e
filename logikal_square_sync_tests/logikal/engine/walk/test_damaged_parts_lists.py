"""Damaged parts lists: a failed fetch, retried under the backoff, until the same bytes arrive twice."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from logikal_square_sync.alerts.messages import check_alert
from logikal_square_sync.logikal.checks import (
    READABLE_CHECK_NAME,
    parts_lists_readable,
    readable_evaluation,
)
from logikal_square_sync.logikal.engine.client.parts_list_parser import (
    BROKEN_AT_SOURCE,
    FETCH_FAILED,
    INVALID,
    PARSED,
)
from logikal_square_sync.logikal.engine.store.contents import pending_parts_lists, unfetched_elevations
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_failures import ProjectFailures, load_failures
from logikal_square_sync.logikal.engine.syncs.project_selection import (
    due_projects,
    load_project_states,
)
from logikal_square_sync.logikal.engine.walk.damaged_parts_lists import DAMAGED_PREFIX, damaged_before
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    NOTHING_DELETED,
    assert_warehouse_equals_source,
    marked_deleted,
    table_rows,
    warehouse_state,
)
from logikal_square_sync_tests.marks import SQLITE_ONLY

MINUTE = timedelta(minutes=1)
PARTS_LIST = "/elevations/selected/parts-list"


def _failures(conn: sa.Connection, project: str) -> ProjectFailures:
    """The project's failures in a row; the test expects some."""
    failures = load_failures(conn, project)
    assert failures is not None
    return failures


def _first_elevation(sandbox) -> tuple[str, str]:
    project = sorted(p["id"] for p in sandbox.projects())[0]
    phase = sandbox.phases(project)[0]["id"]
    return project, sandbox.elevations(project, phase)[0]["id"]


def _sync(logikal, engine, project: str):
    with logikal.pool() as pool:
        return sync_project_contents(pool, engine, project)


def _row(engine, elevation: str) -> dict:
    return next(r for r in table_rows(engine, t.logikal_parts_lists) if r["elevation_id"] == elevation)


def _glass(engine, elevation: str) -> list[dict]:
    rows = [r for r in table_rows(engine, t.logikal_elevation_glass) if r["elevation_id"] == elevation]
    return sorted(rows, key=lambda r: r["glass_id"])


def _synced_at(engine, project: str):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(t.logikal_projects.c.contents_synced_at).where(t.logikal_projects.c.id == project)
        ).scalar()


def _damaged_rows(engine) -> list[str]:
    with engine.connect() as conn:
        query = sa.select(t.sync_state.c.stream).where(t.sync_state.c.stream.startswith(DAMAGED_PREFIX))
        return list(conn.execute(query).scalars())


def test_a_download_cut_short_keeps_the_good_copy_and_is_fetched_again(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project, elevation = _first_elevation(sandbox)
    synced = _synced_at(engine, project)
    good_row, good_glass = _row(engine, elevation), _glass(engine, elevation)
    files_before = table_rows(engine, t.logikal_parts_list_files)
    sandbox.change_elevation(elevation)
    sandbox.config.truncated_parts_list_share = 1.0  # every answer carries a file cut short

    result = _sync(logikal, engine, project)

    assert sandbox.stats.parts_lists_truncated == 1
    assert result.parts_lists_failed == 1 and result.parts_lists_fetched == 0
    assert "damaged download" in result.failures[0] and "cut short" in result.failures[0]
    # The previous good copy stays: its row, its file and its glass.
    assert _row(engine, elevation) == good_row and good_row["parse_status"] == PARSED
    assert _glass(engine, elevation) == good_glass and good_glass
    assert table_rows(engine, t.logikal_parts_list_files) == files_before
    # Not marked synced, counted for the backoff, and still pending.
    assert _synced_at(engine, project) == synced
    with engine.connect() as conn:
        assert _failures(conn, project).count == 1
        assert pending_parts_lists(conn, project) == 1
        assert damaged_before(conn, elevation) is not None

    sandbox.config.truncated_parts_list_share = 0.0
    again = _sync(logikal, engine, project)

    assert again.parts_lists_failed == 0 and again.parts_lists_fetched == 1
    assert_warehouse_equals_source(engine, sandbox)
    assert _row(engine, elevation)["parse_status"] == PARSED and _glass(engine, elevation)
    assert _synced_at(engine, project) > synced
    with engine.connect() as conn:
        assert load_failures(conn, project) is None and pending_parts_lists(conn, project) == 0
    assert _damaged_rows(engine) == []


def test_a_first_fetch_cut_short_leaves_the_elevation_pending_until_a_clean_sync(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    project = sorted(p["id"] for p in sandbox.projects())[0]
    synced = _synced_at(engine, project)
    added = sandbox.add_elevation(project, sandbox.phases(project)[1]["id"], "Never seen")
    sandbox.config.truncated_parts_list_share = 1.0

    result = _sync(logikal, engine, project)

    assert result.parts_lists_failed == 1
    row = _row(engine, added)
    assert row["parse_status"] == FETCH_FAILED and row["sha256"] is None and not _glass(engine, added)
    assert "damaged download" in row["parse_error"]
    assert _synced_at(engine, project) == synced
    with engine.connect() as conn:
        assert pending_parts_lists(conn, project) == 1
        [unfetched] = unfetched_elevations(conn, [project])
    assert unfetched.id == added and "damaged download" in unfetched.reason
    assert warehouse_state(engine)["parts_lists"].get(added) is None

    sandbox.config.truncated_parts_list_share = 0.0
    sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    assert _row(engine, added)["parse_status"] == PARSED and _glass(engine, added)
    assert _synced_at(engine, project) > synced


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("damaged", id="damaged-at-full-size"),
        pytest.param("truncated", id="always-cut-at-two-thirds", marks=SQLITE_ONLY),
        pytest.param("not_sqlite", id="not-sqlite", marks=SQLITE_ONLY),
    ],
)
def test_a_file_broken_at_the_source_is_invalid_after_the_second_identical_fetch(
    logikal, engine, warehouse, sandbox, kind: str
) -> None:
    sync_everything(logikal, engine)
    project, elevation = _first_elevation(sandbox)
    good_row, good_glass = _row(engine, elevation), _glass(engine, elevation)
    sandbox.change_elevation(elevation)
    sandbox.corrupt_parts_list(elevation, kind=kind)
    broken = sandbox.parts_list_bytes(elevation)
    if kind == "damaged":  # as long as the good file, with a valid header: only SQLite's check tells
        assert broken[:100] == sandbox.parts_list_bytes(elevation)[:100]

    first = _sync(logikal, engine, project)

    # One damaged fetch is a failed fetch: the good copy of the previous version stays.
    assert first.parts_lists_failed == 1 and INVALID not in first.parse_status
    assert _row(engine, elevation) == good_row and _glass(engine, elevation) == good_glass
    assert readable_evaluation(engine).passed
    with engine.connect() as conn:
        assert damaged_before(conn, elevation) == hashlib.sha256(broken).hexdigest()
        assert _failures(conn, project).count == 1

    second = _sync(logikal, engine, project)

    # The same bytes again: a property of the source, stored as served.
    assert second.parts_lists_failed == 0 and second.parse_status[INVALID] == 1
    row = _row(engine, elevation)
    assert row["parse_status"] == INVALID and row["sha256"] == hashlib.sha256(broken).hexdigest()
    assert row["parse_error"].startswith(BROKEN_AT_SOURCE)
    assert (
        row["elevation_version_id"]
        == sandbox.elevations(project, sandbox.phases(project)[0]["id"])[0]["versionId"]
    )
    assert _glass(engine, elevation) == []
    assert_warehouse_equals_source(engine, sandbox)  # the warehouse holds what the source serves
    with engine.connect() as conn:
        assert load_failures(conn, project) is None and pending_parts_lists(conn, project) == 0
    assert _damaged_rows(engine) == []

    # The check fails naming the elevation, and its alert says the file is broken at the source.
    evaluation = readable_evaluation(engine)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.description is not None
    assert elevation in evaluation.description and "broken at the source" in evaluation.description
    key = dg.AssetCheckKey(evaluation.asset_key, READABLE_CHECK_NAME)
    alert = check_alert(key, True, evaluation.description, None, lambda path: path)
    assert "broken at the source" in alert.body and "same damaged file on two fetches" in alert.body
    checked = parts_lists_readable(warehouse=warehouse)
    assert isinstance(checked, dg.AssetCheckResult)
    assert not checked.passed and checked.metadata["parts_lists_broken_at_source"].value == 1

    # Not fetched again while the elevation is unchanged; a change brings the good file back.
    sandbox.reset_stats()
    _sync(logikal, engine, project)
    assert sandbox.stats.parts_lists_served == 0
    sandbox.change_elevation(elevation)
    _sync(logikal, engine, project)
    assert _row(engine, elevation)["parse_status"] == PARSED and _glass(engine, elevation)
    assert readable_evaluation(engine).passed
    assert_warehouse_equals_source(engine, sandbox)


def test_an_invalid_file_no_second_fetch_confirmed_is_fetched_again(logikal, engine, sandbox) -> None:
    """A row stored `invalid` after a single fetch (as before damaged downloads were told apart)."""
    sync_everything(logikal, engine)
    project, elevation = _first_elevation(sandbox)
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.logikal_parts_lists)
            .where(t.logikal_parts_lists.c.elevation_id == elevation)
            .values(parse_status=INVALID, parse_error="unreadable SQLite database: malformed")
        )
        conn.execute(
            sa.delete(t.logikal_elevation_glass).where(t.logikal_elevation_glass.c.elevation_id == elevation)
        )
    with engine.connect() as conn:
        assert pending_parts_lists(conn, project) == 1
        [unfetched] = unfetched_elevations(conn, [project])
    assert unfetched.id == elevation and "not yet confirmed broken at the source" in unfetched.reason
    assert readable_evaluation(engine).passed  # not known to be broken at the source
    sandbox.reset_stats()

    result = _sync(logikal, engine, project)

    assert sandbox.stats.parts_lists_served == 1 and result.parts_lists_fetched == 1
    assert _row(engine, elevation)["parse_status"] == PARSED and _glass(engine, elevation)
    assert_warehouse_equals_source(engine, sandbox)


def test_two_different_damaged_downloads_never_make_a_file_invalid(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project, elevation = _first_elevation(sandbox)
    sandbox.change_elevation(elevation)
    sandbox.config.truncated_parts_list_share = 1.0  # cut at a random byte each time
    hashes = set()
    for count in range(1, 4):
        result = _sync(logikal, engine, project)
        assert result.parts_lists_failed == 1 and _row(engine, elevation)["parse_status"] == PARSED
        with engine.connect() as conn:
            hashes.add(damaged_before(conn, elevation))
            assert _failures(conn, project).count == count
    assert len(hashes) == 3


def test_a_damaged_download_waits_for_the_backoff_then_is_queued_again(
    logikal, engine, sandbox, pinned_clock
) -> None:
    policy = policies().logikal.project_sync
    sync_everything(logikal, engine)
    project, elevation = _first_elevation(sandbox)
    sandbox.change_elevation(elevation)
    sandbox.config.truncated_parts_list_share = 1.0

    def due(at) -> bool:
        with engine.connect() as conn:
            return project in {d.id for d in due_projects(load_project_states(conn), at, policy)}

    _sync(logikal, engine, project)
    with engine.connect() as conn:
        failed_at = _failures(conn, project).last_failed_at
    # The first delay of policies.yaml `logikal.failure_backoff` (5 min), then due again: the
    # project was not marked synced, so it stays due as it was.
    retry = failed_at + policy.backoff.delay(1)
    assert policy.backoff.delay(1) == 5 * MINUTE
    assert not due(retry - timedelta(seconds=1))
    pinned_clock.move_to(retry + policy.interval)
    assert due(retry + policy.interval)

    _sync(logikal, engine, project)  # damaged again (another cut): the second delay
    with engine.connect() as conn:
        failures = _failures(conn, project)
    assert failures.count == 2
    assert not due(failures.last_failed_at + policy.backoff.delay(2) - timedelta(seconds=1))
    pinned_clock.move_to(failures.last_failed_at + policy.backoff.delay(2) + policy.interval)

    sandbox.config.truncated_parts_list_share = 0.0
    _sync(logikal, engine, project)
    assert_warehouse_equals_source(engine, sandbox)
    with engine.connect() as conn:
        assert load_failures(conn, project) is None


# Locks on 5 % of the elevations, 10 % of the parts lists cut short, every session's token
# expired now and then, and 2 % of the calls answered 500.
CHAOS = {"truncated_parts_list_share": 0.10, "server_error_share": 0.02, "elevations_per_phase": 5}


@pytest.mark.parametrize("sandbox", [CHAOS], indirect=True)
def test_one_sync_after_the_faults_stop_leaves_the_warehouse_exact(logikal, engine, sandbox) -> None:
    rng = random.Random(17)
    elevations = sandbox.all_elevation_ids()
    locked = rng.sample(elevations, max(1, round(len(elevations) * 0.05)))
    for elevation in locked:
        sandbox.lock_elevation(elevation)
    calls = [0]

    def expire_tokens_now_and_then(request: httpx.Request, response: httpx.Response) -> None:
        calls[0] += 1
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if calls[0] % 40 == 0 and token:
            # The token this call used, as a server whose tokens time out: every token is expired
            # only after a call with it came back. Expiring every live token at once could also hit
            # one another session was just issued, which the client rightly reports as an error.
            sandbox.expire_token(token)

    logikal.after_each_response(expire_tokens_now_and_then)
    # Rounds until each random fault has struck a few times (which answers they strike depends on
    # the sessions' interleaving), at least three, at most eight.
    for round_number in range(8):
        stats = sandbox.stats
        if round_number >= 3 and stats.parts_lists_truncated >= 3 and stats.random_server_errors >= 3:
            break
        # The source changes between syncs, so every round has parts lists to fetch.
        for elevation in rng.sample(elevations, len(elevations) // 3):
            sandbox.change_elevation(elevation)
        sync_everything(logikal, engine)
        assert marked_deleted(engine) == NOTHING_DELETED, round_number
    stats = sandbox.stats
    assert stats.parts_lists_truncated >= 3 and stats.random_server_errors >= 3
    assert stats.responses.get("POST /elevations/select 409", 0) >= 1
    assert any(answer.endswith(" 401") for answer in stats.responses), stats.responses  # tokens expired
    # While the faults last, no elevation is exact by accident: every file the warehouse holds is
    # a whole SQLite file, and nothing damaged was taken for a file broken at the source.
    for row in table_rows(engine, t.logikal_parts_lists):
        assert row["parse_status"] in (PARSED, FETCH_FAILED), row
    assert readable_evaluation(engine).passed

    sandbox.config.truncated_parts_list_share = 0.0
    sandbox.config.server_error_share = 0.0
    for elevation in locked:
        sandbox.lock_elevation(elevation, locked=False)
    result = sync_everything(logikal, engine)

    assert result.total("parts_lists_failed") == 0
    assert_warehouse_equals_source(engine, sandbox)
    glass = {row["elevation_id"] for row in table_rows(engine, t.logikal_elevation_glass)}
    assert glass == set(sandbox.all_elevation_ids())
    assert _damaged_rows(engine) == []
    with engine.connect() as conn:
        assert all(state.failures == 0 for state in load_project_states(conn))

"""A project that keeps failing is queued again only after an exponential, capped backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_failures import load_failures
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.engine.syncs.project_selection import NEW, due_projects, load_project_states
from logikal_square_sync.policies import FailureBackoff, PolicyFileError, load_policies, policies
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import assert_warehouse_equals_source

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
# The packaged policy: 5 min after the first failure, doubling, at most an hour.
RETRY_MINUTES = [5, 10, 20, 40, 60, 60, 60]


def test_the_delays_double_up_to_the_cap() -> None:
    backoff = load_policies().logikal.failure_backoff
    assert [backoff.delay(n) / MINUTE for n in range(1, 8)] == RETRY_MINUTES
    assert backoff.delay(0) == timedelta(0)
    assert FailureBackoff(first_minutes=1, factor=3, max_minutes=30).delay(10_000) == 30 * MINUTE


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("logikal: {failure_backoff: {first_minutes: 0}}", r"logikal\.failure_backoff\.first_minutes: "),
        ("logikal: {failure_backoff: {factor: 0.5}}", r"logikal\.failure_backoff\.factor: "),
        ("logikal: {failure_backoff: {max_minutes: often}}", r"logikal\.failure_backoff\.max_minutes: "),
        ("logikal: {failure_backoff: {max_minutes: 2}}", r"logikal\.failure_backoff: .*first_minutes <= max"),
        ("logikal: {failure_backoff: {first: 5}}", r"logikal\.failure_backoff\.first: Extra inputs"),
    ],
)
def test_a_bad_backoff_fails_naming_the_field(tmp_path, text: str, field: str) -> None:
    override = tmp_path / "override.yaml"
    override.write_text(text + "\n")
    with pytest.raises(PolicyFileError, match=field):
        load_policies(override=override)


def _discover(logikal, engine) -> None:
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    with logikal.pool() as pool:
        sync_projects(pool, engine)


def _state(engine, project: str):
    with engine.connect() as conn:
        return next(s for s in load_project_states(conn) if s.id == project)


def _due(engine, project: str, at, policy) -> bool:
    with engine.connect() as conn:
        return project in {d.id for d in due_projects(load_project_states(conn), at, policy)}


def test_a_failing_project_is_retried_after_5_10_20_minutes_capped_and_reset_by_success(
    logikal, engine, sandbox, pinned_clock
) -> None:
    policy = policies().logikal.project_sync
    _discover(logikal, engine)
    project = sandbox.projects()[0]["id"]
    phase = sandbox.phases(project)[0]["id"]
    locked = sandbox.elevations(project, phase)[0]["id"]
    sandbox.lock_elevation(locked)  # open in LogiKal desktop: its parts list answers 409
    assert _due(engine, project, _state(engine, project).discovered_at, policy)

    retries = []
    for failures, minutes in enumerate(RETRY_MINUTES, start=1):
        with logikal.pool() as pool:
            result = sync_project_contents(pool, engine, project)
        assert result.parts_lists_failed == 1
        state = _state(engine, project)
        # Left unfetched: not marked synced, so the sensor still takes it as new, after its backoff.
        assert state.failures == failures and state.contents_synced_at is None
        failed_at = state.last_failed_at
        retry = failed_at + minutes * MINUTE
        assert not _due(engine, project, retry - SECOND, policy)
        assert [(d.id, d.reason) for d in due_projects([state], retry, policy)] == [(project, NEW)]
        retries.append(round((retry - failed_at) / MINUTE))
        pinned_clock.move_to(retry)  # the sensor's tick that queues the retry
    assert retries == RETRY_MINUTES

    sandbox.lock_elevation(locked, locked=False)
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project)
    assert result.parts_lists_failed == 0
    state = _state(engine, project)
    assert state.failures == 0 and state.last_failed_at is None and state.contents_synced_at is not None
    with engine.connect() as conn:
        assert load_failures(conn, project) is None

    # The next failure starts again at the first delay.
    sandbox.change_elevation(locked)
    sandbox.lock_elevation(locked)
    with logikal.pool() as pool:
        sync_project_contents(pool, engine, project)
    state = _state(engine, project)
    assert state.failures == 1 and state.retry_at(policy) == state.last_failed_at + 5 * MINUTE


def test_an_error_counts_and_a_force_sync_within_the_backoff_still_runs(logikal, engine, sandbox) -> None:
    policy = policies().logikal.project_sync
    sync_everything(logikal, engine)
    project = sandbox.projects()[0]["id"]
    sandbox.change_elevation(sandbox.elevations(project, sandbox.phases(project)[0]["id"])[0]["id"])
    sandbox.inject_server_errors("GET /phases", times=100, status=403)  # permission withdrawn
    logikal.max_attempts = 1
    for _ in range(2):
        with logikal.pool() as pool, pytest.raises(Exception, match="403"):
            sync_project_contents(pool, engine, project)
    state = _state(engine, project)
    assert state.failures == 2 and not _due(engine, project, state.last_failed_at + 9 * MINUTE, policy)

    # A person's force sync (the UI's materialize, force_sync) launches the run directly: no backoff.
    sandbox.faults.clear()
    with logikal.pool() as pool:
        sync_project_contents(pool, engine, project)
    assert _state(engine, project).failures == 0
    assert_warehouse_equals_source(engine, sandbox)

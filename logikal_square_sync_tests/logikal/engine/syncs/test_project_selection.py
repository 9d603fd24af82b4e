"""Which projects a tick syncs, and which count as stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_selection import (
    ACTIVE,
    CHANGED,
    NEW,
    SWEEP,
    ProjectState,
    due_projects,
    load_project_states,
    staleness,
)
from logikal_square_sync.policies import policies
from logikal_square_sync_tests.clock import awkward_moments
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# The packaged policies.yaml: interval 15 min, warn 22 / fail 30, active 14 d, sweep 24 h, 50 per tick.
POLICY = policies().logikal.project_sync


def state(
    name: str,
    *,
    changed: timedelta | None,
    synced: timedelta | None,
    seen_change: timedelta | None = None,
    elevation_change: timedelta | None = None,
) -> ProjectState:
    return ProjectState(
        id=name,
        name=name,
        changed_at=None if changed is None else NOW - changed,
        latest_elevation_change=None if elevation_change is None else NOW - elevation_change,
        is_deleted=False,
        contents_synced_at=None if synced is None else NOW - synced,
        contents_changed_at=(NOW - seen_change)
        if seen_change is not None
        else (None if changed is None else NOW - changed),
        discovered_at=NOW - timedelta(minutes=5),
    )


DAYS, MIN = timedelta(days=1), timedelta(minutes=1)
STATES = [
    state("fresh-active", changed=1 * DAYS, synced=5 * MIN),
    state("due-active", changed=2 * DAYS, synced=20 * MIN),
    state("dormant", changed=400 * DAYS, synced=3 * 60 * MIN),
    state("dormant-due", changed=400 * DAYS, synced=25 * 60 * MIN),
    state("never", changed=1 * DAYS, synced=None),
    state("changed", changed=1 * MIN, synced=10 * MIN, seen_change=30 * DAYS),
    state("elevation-active", changed=400 * DAYS, synced=16 * MIN, elevation_change=3 * DAYS),
]


def test_new_and_changed_first_then_active_then_the_sweep() -> None:
    due = due_projects(STATES, NOW, POLICY)
    assert [(d.id, d.reason) for d in due] == [
        ("never", NEW),
        ("changed", CHANGED),
        ("due-active", ACTIVE),  # least recently synced first
        ("elevation-active", ACTIVE),  # active through an elevation edit
        ("dormant-due", SWEEP),
    ]
    assert [d.priority for d in due] == [-1, -1, -2, -2, -3]


def test_the_budget_and_runs_in_flight_limit_a_tick() -> None:
    small = POLICY.model_copy(update={"max_runs_per_tick": 2})
    assert [d.id for d in due_projects(STATES, NOW, small)] == ["never", "changed"]
    assert [d.id for d in due_projects(STATES, NOW, small, in_flight={"never"})] == ["changed", "due-active"]


def test_active_projects_have_the_tight_windows_and_dormant_ones_the_sweeps() -> None:
    assert staleness(STATES, NOW, POLICY).passed
    late = [
        state("warned", changed=1 * DAYS, synced=25 * MIN),
        state("late", changed=1 * DAYS, synced=31 * MIN),
        state("dormant-warned", changed=900 * DAYS, synced=31 * 60 * MIN),
        state("old", changed=900 * DAYS, synced=49 * 60 * MIN),
    ]
    report = staleness(STATES + late, NOW, POLICY)
    assert {s.id for s in report.warn} == {"warned", "dormant-warned"}
    assert {s.id for s in report.fail} == {"late", "old"}
    assert report.checked == len(STATES) + 4 and not report.passed
    assert "old (49.0 h)" in report.describe() and "late (31 min)" in report.describe()


def _last_synced(states: list[ProjectState]) -> datetime:
    """When the last of `states` was synced; every one of them was."""
    synced = [s.contents_synced_at for s in states if s.contents_synced_at is not None]
    assert len(synced) == len(states)
    return max(synced)


def test_states_come_from_the_warehouse(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    with engine.connect() as conn:
        states = load_project_states(conn)
    assert {s.id for s in states} == {p["id"] for p in sandbox.projects()}
    assert all(s.latest_elevation_change is not None for s in states)
    assert due_projects(states, _last_synced(states), POLICY) == []


@pytest.mark.parametrize("warehouse_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("moment", awkward_moments())
def test_the_selection_at_any_moment(logikal, engine, sandbox, pinned_clock, moment) -> None:
    """Synced at `moment`, edited at once: due and stale exactly by elapsed time, across any date line."""
    pinned_clock.move_to(moment)
    policy = policies().logikal.project_sync
    sync_everything(logikal, engine)
    with engine.connect() as conn:
        states = load_project_states(conn)
    synced = _last_synced(states)
    assert moment <= synced < moment + timedelta(minutes=5)
    # The generated projects are dormant (last changed in 2025): only the daily sweep is due.
    assert due_projects(states, synced + policy.interval, policy) == []
    swept = due_projects(states, synced + policy.sweep_every + MIN, policy)
    assert {d.reason for d in swept} == {SWEEP} and len(swept) == len(states)

    project = sandbox.projects()[0]["id"]
    phase = sandbox.phases(project)[0]["id"]
    sandbox.change_elevation(sandbox.elevations(project, phase)[0]["id"])  # stamped "now"
    with logikal.pool() as pool:
        sync_project_contents(pool, engine, project)
    with engine.connect() as conn:
        states = load_project_states(conn)
    edited = next(s for s in states if s.id == project)
    at = edited.contents_synced_at
    assert at is not None and edited.is_active(at, policy)
    assert [d.id for d in due_projects(states, at + policy.interval - MIN, policy)] == []
    due = due_projects(states, at + policy.interval, policy)
    assert [(d.id, d.reason) for d in due] == [(project, ACTIVE)]
    assert project not in {s.id for s in staleness(states, at + policy.warn_after, policy).warn}
    assert project in {s.id for s in staleness(states, at + policy.warn_after + MIN, policy).warn}
    assert project in {s.id for s in staleness(states, at + policy.fail_after + MIN, policy).fail}

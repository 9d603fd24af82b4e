"""Routes under the session rules, chunking of parts-list work, and the rules' lower bound."""

from __future__ import annotations

import pytest

from logikal_square_sync.logikal.engine.navigation import ROOT, Cursor, State, Step, Target, route
from logikal_square_sync.logikal.engine.planner import (
    DEFAULT_COSTS,
    chunk_parts_lists,
    estimated_makespan,
    lower_bound_seconds,
    minimal_calls,
)

D, P, X, Y = "A/B", "p1", "x1", "y1"
ROOT_CURSOR = Cursor(State.ROOT)
IN_DIR = Cursor(State.DIRECTORY, "A")
IN_PROJECT = Cursor(State.PROJECT, D, P)
IN_PHASE = Cursor(State.PHASE, D, P, X)
IN_ELEVATION = Cursor(State.ELEVATION, D, P, X, "e1")


@pytest.mark.parametrize(
    ("cursor", "target", "expected"),
    [
        (Cursor(), Target(D), None),
        (ROOT_CURSOR, Target(ROOT), []),
        (IN_DIR, Target(ROOT), None),  # the roots need a new login
        (ROOT_CURSOR, Target(D, P, X), [Step("directory", D), Step("project", P), Step("phase", X)]),
        (IN_DIR, Target(D), [Step("directory", D)]),  # any path from directory state
        (Cursor(State.DIRECTORY, D), Target(D, P), [Step("project", P)]),
        (IN_PROJECT, Target(D), None),  # no way back up
        (IN_PROJECT, Target(D, "p2"), None),
        (IN_PROJECT, Target(D, P), []),
        (IN_PHASE, Target(D, P), []),  # phases are listed from phase state too
        (IN_PHASE, Target(D, P, Y), [Step("phase", Y)]),  # sibling phases
        (IN_ELEVATION, Target(D, P, Y), None),
        (IN_ELEVATION, Target(D, P, X), None),  # listing needs phase state
        (IN_ELEVATION, Target(D, P, X, for_elevations=True), []),  # a sibling elevation
        (IN_ELEVATION, Target(D, P, Y, for_elevations=True), None),
    ],
)
def test_routes_follow_the_session_rules(cursor, target, expected) -> None:
    assert route(cursor, target, sibling_elevations=True) == expected


def test_without_sibling_selects_an_elevation_is_a_dead_end() -> None:
    assert route(IN_ELEVATION, Target(D, P, X, for_elevations=True), sibling_elevations=False) is None


def _sizes(work: dict[str, int], pool_size: int, ready: int) -> list[tuple[str, int]]:
    ids = {phase: [f"{phase}{i}" for i in range(count)] for phase, count in work.items()}
    chunks = chunk_parts_lists(ids, pool_size=pool_size, ready_sessions=ready)
    assert sorted(e for c in chunks for e in c.elevation_ids) == sorted(e for v in ids.values() for e in v)
    return [(c.phase_id, len(c.elevation_ids)) for c in chunks]


def test_each_phase_is_one_chunk_when_the_pool_has_a_session_for_each() -> None:
    assert _sizes({"a": 6, "b": 6, "c": 5}, pool_size=3, ready=3) == [("a", 6), ("b", 6), ("c", 5)]
    # A fourth session would only split a phase into halves that do not beat the other phases.
    assert _sizes({"a": 6, "b": 6, "c": 5}, pool_size=4, ready=4) == [("a", 6), ("b", 6), ("c", 5)]


def test_a_big_phase_is_split_over_idle_sessions() -> None:
    assert _sizes({"a": 17}, pool_size=3, ready=3) == [("a", 6), ("a", 6), ("a", 5)]
    # With two sessions for three phases both log in again, and one phase is shared between them.
    plan = _sizes({"a": 6, "b": 6, "c": 5}, pool_size=2, ready=2)
    assert len(plan) == 4 and len({phase for phase, _ in plan}) == 3
    split = estimated_makespan([size for _, size in plan], pool_size=2, ready_sessions=2)
    assert split < estimated_makespan([6, 6, 5], pool_size=2, ready_sessions=2) - 4


def test_a_few_parts_lists_do_not_pay_for_a_new_login() -> None:
    assert _sizes({"a": 3}, pool_size=3, ready=1) == [("a", 3)]
    assert _sizes({"a": 2, "b": 1}, pool_size=3, ready=1) == [("a", 2), ("b", 1)]


def test_without_sibling_selects_every_elevation_is_a_chunk() -> None:
    chunks = chunk_parts_lists({"a": ["1", "2"], "b": ["3"]}, pool_size=2, sibling_elevations=False)
    assert sorted(c.elevation_ids for c in chunks) == [("1",), ("2",), ("3",)]


def test_the_makespan_estimate_charges_a_login_for_a_second_chunk() -> None:
    one = estimated_makespan([4], pool_size=1, ready_sessions=1)
    two = estimated_makespan([2, 2], pool_size=1, ready_sessions=1)
    assert two - one == pytest.approx(DEFAULT_COSTS.new_phase_session)
    assert estimated_makespan([2, 2], pool_size=2, ready_sessions=2) < one


def test_the_rules_force_a_login_per_phase_with_parts_lists() -> None:
    calls = minimal_calls([6, 6, 5])
    assert calls["POST /auth"] == calls["DELETE /auth"] == 3
    assert calls["GET /elevations/selected/parts-list"] == calls["POST /elevations/select"] == 17
    assert calls["GET /phases"] == 1 and calls["GET /elevations"] == 3
    unchanged = minimal_calls([6, 6, 5], [0, 0, 0])
    assert unchanged["POST /auth"] == 1 and "GET /elevations/selected/parts-list" not in unchanged
    assert minimal_calls([2, 2], sibling_elevations=False)["POST /auth"] == 4


def test_the_lower_bound_spreads_the_forced_calls_over_the_sessions_that_can_work() -> None:
    per_call = dict.fromkeys(minimal_calls([1], sessions=4), 1.0)
    one_session = sum(minimal_calls([1]).values())
    assert lower_bound_seconds([1], per_call, 1) == one_session
    # A second session costs five calls (login, two selects, a phase, logout) and brings no parallel work.
    assert lower_bound_seconds([1], per_call, 2) == min(one_session, (one_session + 5) / 2)
    three_phases = sum(minimal_calls([6, 6, 5]).values())
    assert lower_bound_seconds([6, 6, 5], per_call, 3) == three_phases / 3
    assert lower_bound_seconds([6, 6, 5], per_call, 2) == three_phases / 2  # three logins, two at a time
    assert DEFAULT_COSTS.new_phase_session > DEFAULT_COSTS.login

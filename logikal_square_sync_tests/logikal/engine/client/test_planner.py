"""Routes under the session rules, the sessions each phase's parts lists get, and the rules' lower bound."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from logikal_square_sync.logikal.engine.client.navigation import ROOT, Cursor, State, Step, Target, route
from logikal_square_sync.logikal.engine.client.planner import (
    DEFAULT_COSTS,
    Joiner,
    late_join,
    lower_bound_seconds,
    minimal_calls,
    phase_finish,
    place_joiners,
)

D, P, X, Y = "A/B", "p1", "x1", "y1"


def assign_sessions(
    remaining: Mapping[str, int],
    working: Mapping[str, int],
    joiners: Sequence[Joiner],
    in_flight: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """How many more sessions each phase gets."""
    return place_joiners(remaining, working, joiners, in_flight=in_flight).counts()


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


C = DEFAULT_COSTS
PER_LIST = C.per_parts_list
READY = Joiner(C.select_phase)  # logged in, standing in the project: a phase select away
NEW_LOGIN = Joiner(C.new_phase_session, logged_in=False)


def test_a_phase_finishes_when_its_sessions_have_drawn_every_parts_list() -> None:
    assert phase_finish(6, [0.0]) == pytest.approx(6 * PER_LIST)
    # Two sessions draw from one queue: the later one takes what is left when it arrives.
    assert phase_finish(6, [0.0, 0.0]) == pytest.approx(3 * PER_LIST)
    assert phase_finish(6, [0.0, 2 * PER_LIST]) == pytest.approx(4 * PER_LIST)
    # A session that arrives after the others are done takes nothing, and does not count.
    assert phase_finish(2, [0.0, 0.0, 100.0]) == pytest.approx(PER_LIST)
    assert phase_finish(0, []) == 0.0
    assert phase_finish(1, []) == float("inf")


def test_every_phase_with_work_gets_a_session_the_longest_the_earliest() -> None:
    early, late = Joiner(0.3), Joiner(5.0)
    plan = assign_sessions({"a": 2, "b": 9}, {}, [late, early])
    assert plan == {"a": 1, "b": 1}
    # The longest phase took the earliest joiner: the other one is left for the short phase.
    assert assign_sessions({"a": 2, "b": 9}, {}, [early]) == {"a": 1, "b": 1}
    assert assign_sessions({"a": 0, "b": 0}, {}, [early]) == {}


def test_a_first_sync_spreads_four_sessions_over_three_phases_longest_first() -> None:
    # 6 + 6 + 5 parts lists, four sessions logged in: the fourth joins a six (the first of the tie).
    assert assign_sessions({"a": 6, "b": 6, "c": 5}, {}, [READY] * 4) == {"a": 2, "b": 1, "c": 1}
    # The sessions that listed a phase are on it already; the fourth goes where the most is left.
    plan = assign_sessions({"a": 5, "b": 6, "c": 5}, {"a": 1, "b": 1, "c": 1}, [Joiner(2.0)])
    assert plan == {"b": 1}


def test_a_session_logged_in_already_joins_wherever_it_shortens_a_phase() -> None:
    # It cannot shorten the longest phase (it arrives too late), but the short one.
    assert assign_sessions({"a": 6, "b": 2}, {"a": 1, "b": 1}, [Joiner(6 * PER_LIST)]) == {}
    assert assign_sessions({"a": 1, "b": 3}, {"a": 1, "b": 1}, [Joiner(0.5)]) == {"b": 1}
    # One that would arrive after every phase is done is not used.
    assert assign_sessions({"a": 2}, {"a": 1}, [Joiner(3 * PER_LIST)]) == {}


def test_a_new_login_joins_only_when_the_project_then_finishes_more_than_a_login_sooner() -> None:
    # Six parts lists on one session: a login of 7.9 s would save about 3 s, less than it costs.
    assert assign_sessions({"a": 6}, {"a": 1}, [NEW_LOGIN]) == {}
    # Seventeen in one phase: a second session saves more than a login, a third no longer does.
    assert assign_sessions({"a": 17}, {"a": 1}, [NEW_LOGIN, NEW_LOGIN]) == {"a": 1}
    assert assign_sessions({"a": 30}, {"a": 1}, [NEW_LOGIN, NEW_LOGIN]) == {"a": 2}
    # It must shorten the project, not one phase: another phase alone takes as long.
    assert assign_sessions({"a": 17, "b": 16}, {"a": 1, "b": 1}, [NEW_LOGIN]) == {}
    # The ones logged in already go first, and the logins only for what they leave.
    assert assign_sessions({"a": 17}, {"a": 1}, [NEW_LOGIN, READY, READY]) == {"a": 2}


def test_a_phase_without_a_session_waits_for_a_login_when_no_joiner_is_left() -> None:
    assert assign_sessions({"a": 3, "b": 3}, {"a": 1}, []) == {"b": 1}
    # Even when the one joiner left needs a login of its own.
    assert assign_sessions({"a": 3, "b": 1}, {"a": 1}, [NEW_LOGIN]) == {"b": 1}


def test_the_plan_does_not_depend_on_the_order_of_the_joiners() -> None:
    joiners = [Joiner(0.3), Joiner(1.2), NEW_LOGIN, Joiner(4.0), NEW_LOGIN]
    work, working = {"a": 9, "b": 4, "c": 12}, {"c": 1}
    assert assign_sessions(work, working, joiners) == assign_sessions(work, working, joiners[::-1])


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


def test_sessions_busy_with_a_parts_list_make_their_phase_look_longer() -> None:
    # Five left on each of a and b; a's session is fetching a sixth, b's session is free.
    assert assign_sessions({"a": 5, "b": 5}, {"a": 1, "b": 1}, [READY]) == {"a": 1}
    assert assign_sessions({"a": 5, "b": 5}, {"a": 1, "b": 1}, [READY], in_flight={"b": 1}) == {"b": 1}


def test_each_joiner_is_placed_in_the_order_given() -> None:
    # The earliest joiner takes the longest phase without a session, whatever its place in the list.
    placement = place_joiners({"a": 2, "b": 9}, {}, [Joiner(5.0), Joiner(0.3)])
    assert placement.joiners == ["a", "b"]
    assert placement.waiting == []
    # No joiner left for the short phase: it waits for a new login.
    placement = place_joiners({"a": 2, "b": 9}, {}, [Joiner(0.3)])
    assert placement.joiners == ["b"]
    assert placement.waiting == ["a"]
    assert placement.counts() == {"a": 1, "b": 1}


def test_a_joiner_stands_by_while_the_phase_that_lags_can_still_be_saved_later() -> None:
    # Two phases of six, each with one session: joining either after a short wait still ends it well
    # before the other, so the joiner waits for the parts lists to tell which one lags.
    assert late_join({"a": 6, "b": 6}, {"a": 1, "b": 1}, {}, wait=0.25) == ("a", True)
    # One left behind by two parts lists: joining it later would end it after the other, so now.
    assert late_join({"a": 6, "b": 4}, {"a": 1, "b": 1}, {}, wait=0.25) == ("a", False)
    # A phase without a session takes the joiner at once; one where it shortens nothing is left.
    assert late_join({"a": 3, "b": 6}, {"a": 1}, {}, wait=0.25) == ("b", False)
    assert late_join({"a": 1}, {"a": 1}, {}, wait=0.25) == (None, False)
    assert late_join({"a": 0}, {}, {}, wait=0.25) == (None, False)

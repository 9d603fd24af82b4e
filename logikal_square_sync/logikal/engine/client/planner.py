"""Cost model and work planning for LogiKal sessions.

A login costs 4.5–9 s, a select 0.06–0.7 s, a parts list 1–3 s (docs/logikal-api.md §4),
so the plan is about logins. Parts lists need elevation state, which cannot
leave its phase, so each phase with work needs a session of its own; the
sessions on a phase draw its parts lists from a shared queue.
`assign_sessions` decides how many sessions each phase gets, the longest work
first: sessions already logged in join wherever they shorten a phase, a new
login only where it shortens the whole project by more than a login costs.

`minimal_calls` and `lower_bound_seconds` state what the session rules force
on any client; the benchmark divides its wall time by that bound.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from logikal_square_sync.logikal.engine.client.navigation import Step


@dataclass(frozen=True)
class CostModel:
    """Mean seconds per call, from the middleware's measured latencies (docs/logikal-api.md §4)."""

    login: float = 6.75
    logout: float = 0.075
    select_directory: float = 0.13
    select_project: float = 0.7
    select_phase: float = 0.3
    select_elevation: float = 0.3
    listing: float = 0.15
    parts_list: float = 2.0

    def step(self, step: Step) -> float:
        return {
            "directory": self.select_directory,
            "project": self.select_project,
            "phase": self.select_phase,
            "elevation": self.select_elevation,
        }[step.kind]

    def route(self, steps: Sequence[Step]) -> float:
        return sum(self.step(step) for step in steps)

    @property
    def new_phase_session(self) -> float:
        """A fresh login that reaches a phase of a known project."""
        return self.login + self.select_directory + self.select_project + self.select_phase

    @property
    def per_parts_list(self) -> float:
        return self.select_elevation + self.parts_list


DEFAULT_COSTS = CostModel()


@dataclass(frozen=True)
class Joiner:
    """A session that could start on any phase's parts lists `delay` seconds from now.

    `logged_in` is False when it takes a login of its own first (a free slot of
    the pool, or a session stuck in another phase's elevation state); its
    `delay` includes that login.
    """

    delay: float
    logged_in: bool = True


def phase_finish(count: int, starts: Sequence[float], costs: CostModel = DEFAULT_COSTS) -> float:
    """Seconds until `count` parts lists of one phase are fetched by sessions free at `starts`.

    The sessions draw from the phase's shared queue, so each takes the next
    parts list when it is free (list scheduling); a session that gets none
    does not count.
    """
    if count <= 0:
        return 0.0
    if not starts:
        return float("inf")
    free = sorted(starts)
    heapq.heapify(free)
    finish = 0.0
    for _ in range(count):
        done = heapq.heappop(free) + costs.per_parts_list
        finish = max(finish, done)
        heapq.heappush(free, done)
    return finish


def assign_sessions(
    remaining: Mapping[str, int],
    working: Mapping[str, int],
    joiners: Sequence[Joiner],
    *,
    costs: CostModel = DEFAULT_COSTS,
) -> dict[str, int]:
    """How many more sessions each phase's parts lists get: the longest work first.

    `remaining` counts each phase's parts lists still to fetch, `working` the
    sessions already on them (free now). A phase with work and no session gets
    one first, the longest phase the earliest joiner. Then each further joiner,
    earliest first, goes to the phase that finishes last among those it makes
    finish sooner: for free when it is logged in already (its login is paid),
    and when it takes a new login only if the whole project then finishes more
    than a login sooner. Phases in the order of `remaining` break ties.
    """
    phases = [phase for phase, count in remaining.items() if count > 0]
    if not phases:
        return {}
    starts = {phase: [0.0] * working.get(phase, 0) for phase in phases}
    extra = dict.fromkeys(phases, 0)
    queue = sorted(joiners, key=lambda joiner: joiner.delay)

    def finish(phase: str, *more: float) -> float:
        return phase_finish(remaining[phase], [*starts[phase], *more], costs)

    for phase in sorted((p for p in phases if not starts[p]), key=lambda p: -remaining[p]):
        # Without a joiner the phase waits for a session another phase lets go: a new login.
        delay = queue.pop(0).delay if queue else costs.new_phase_session
        starts[phase].append(delay)
        extra[phase] += 1
    for joiner in queue:
        finishes = {phase: finish(phase) for phase in phases}
        if joiner.logged_in:
            helped = [p for p in phases if finish(p, joiner.delay) < finishes[p]]
            if not helped:
                continue
            phase = max(helped, key=finishes.__getitem__)
        else:
            phase = max(phases, key=finishes.__getitem__)
            others = max((f for p, f in finishes.items() if p != phase), default=0.0)
            if finishes[phase] - max(finish(phase, joiner.delay), others) <= costs.login:
                continue
        starts[phase].append(joiner.delay)
        extra[phase] += 1
    return {phase: count for phase, count in extra.items() if count}


# -- what the rules force on any client (benchmark) --------------------------------


def sessions_required(fetched_per_phase: Sequence[int], *, sibling_elevations: bool = True) -> int:
    """Elevation state cannot leave its phase: a session per phase with parts lists (per parts list without
    sibling selects), and at least one for the listing."""
    if sibling_elevations:
        return max(1, sum(1 for count in fetched_per_phase if count))
    return max(1, sum(fetched_per_phase))


def minimal_calls(
    elevations_per_phase: Sequence[int],
    fetched_per_phase: Sequence[int] | None = None,
    *,
    sibling_elevations: bool = True,
    sessions: int | None = None,
) -> Counter[str]:
    """The fewest calls that list a project and fetch the given parts lists, with `sessions` logins.

    Each session logs in, selects the directory and the project, selects a
    phase, and logs out; every phase is selected and listed once (the listing
    session fetches in the phase it stands in), one `GET /phases`, and an
    elevation select and a parts list per file. `sessions` defaults to, and
    cannot be below, `sessions_required`.
    """
    fetched = list(fetched_per_phase if fetched_per_phase is not None else elevations_per_phase)
    phases = len(elevations_per_phase)
    sessions = max(sessions or 0, sessions_required(fetched, sibling_elevations=sibling_elevations))
    calls: Counter[str] = Counter()
    calls["POST /auth"] = sessions
    calls["DELETE /auth"] = sessions
    calls["POST /directories/select"] = sessions
    calls["POST /projects/select"] = sessions
    calls["GET /phases"] = 1
    calls["POST /phases/select"] = max(phases, sessions)
    calls["GET /elevations"] = phases
    calls["POST /elevations/select"] = sum(fetched)
    calls["GET /elevations/selected/parts-list"] = sum(fetched)
    return +calls


def lower_bound_seconds(
    elevations_per_phase: Sequence[int],
    seconds_per_call: Mapping[str, float],
    pool_size: int,
    *,
    fetched_per_phase: Sequence[int] | None = None,
    sibling_elevations: bool = True,
) -> float:
    """The best wall time any client can reach under the session rules with `pool_size` sessions at once.

    With s logins in all, the calls of `minimal_calls(sessions=s)` run on at most
    min(s, pool_size) sessions at a time, each session one call after another,
    so no schedule beats their total divided by that; more logins than the
    pool only add work. The bound is the best s.
    """
    fetched = list(fetched_per_phase if fetched_per_phase is not None else elevations_per_phase)
    least = sessions_required(fetched, sibling_elevations=sibling_elevations)

    def total(sessions: int) -> float:
        calls = minimal_calls(
            elevations_per_phase, fetched, sibling_elevations=sibling_elevations, sessions=sessions
        )
        return sum(seconds_per_call[label] * count for label, count in calls.items())

    return min(total(s) / min(s, pool_size) for s in range(least, max(least, pool_size) + 1))

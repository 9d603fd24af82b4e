"""Cost model and work planning for LogiKal sessions.

A login costs 4.5–9 s, a select 0.06–0.7 s, a parts list 1–3 s (docs/logikal-api.md §4),
so the plan is about logins. Parts lists need elevation state, which cannot
leave its phase, so each phase with work needs a session of its own; the
sessions on a phase draw its parts lists from a shared queue.
`place_joiners` decides which phase each session joins, the longest work
first: sessions already logged in join wherever they shorten a phase, a new
login only where it shortens the whole project by more than a login costs.
`late_join` tells a session that doubles up a phase when to pick it: as late
as it can still save the phase that lags, so the parts lists fetched meanwhile
show which one that is.

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


@dataclass(frozen=True)
class Placement:
    """Where each joiner goes (None: it stays out), in the order given, and the phases that wait for a new
    session because no joiner was left for them."""

    joiners: list[str | None]
    waiting: list[str]

    def counts(self) -> dict[str, int]:
        return dict(Counter([*(phase for phase in self.joiners if phase is not None), *self.waiting]))


def place_joiners(
    remaining: Mapping[str, int],
    working: Mapping[str, int],
    joiners: Sequence[Joiner],
    *,
    in_flight: Mapping[str, int] | None = None,
    costs: CostModel = DEFAULT_COSTS,
) -> Placement:
    """The phase each joiner goes to, in the order of `joiners`: the longest work first.

    `remaining` counts each phase's parts lists still to fetch, `working` the
    sessions already on them; `in_flight` of those are fetching one now and are
    free after half a parts list on average, the others now. Without that a phase
    whose sessions are busy looks shorter than one whose session is just starting,
    and the last joiner doubles up the wrong one. A phase with work and no session gets
    one first, the longest phase the earliest joiner. Then each further joiner,
    earliest first, goes to the phase that finishes last among those it makes
    finish sooner: for free when it is logged in already (its login is paid),
    and when it takes a new login only if the whole project then finishes more
    than a login sooner. Phases in the order of `remaining` break ties.
    """
    phases = [phase for phase, count in remaining.items() if count > 0]
    placed: list[str | None] = [None] * len(joiners)
    waiting: list[str] = []
    if not phases:
        return Placement(placed, waiting)
    busy = in_flight or {}
    starts = {phase: _starts(working.get(phase, 0), busy.get(phase, 0), costs) for phase in phases}
    queue = sorted(range(len(joiners)), key=lambda index: joiners[index].delay)

    def finish(phase: str, *more: float) -> float:
        return phase_finish(remaining[phase], [*starts[phase], *more], costs)

    for phase in sorted((p for p in phases if not starts[p]), key=lambda p: -remaining[p]):
        # Without a joiner the phase waits for a session another phase lets go: a new login.
        if queue:
            first = queue.pop(0)
            placed[first] = phase
            starts[phase].append(joiners[first].delay)
        else:
            starts[phase].append(costs.new_phase_session)
            waiting.append(phase)
    for index in queue:
        joiner = joiners[index]
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
        placed[index] = phase
    return Placement(placed, waiting)


def _starts(working: int, in_flight: int, costs: CostModel) -> list[float]:
    """When a phase's sessions are free: those fetching one now after half a parts list on average."""
    busy = min(in_flight, working)
    return [costs.per_parts_list / 2] * busy + [0.0] * (working - busy)


def late_join(
    remaining: Mapping[str, int],
    working: Mapping[str, int],
    in_flight: Mapping[str, int],
    *,
    wait: float,
    costs: CostModel = DEFAULT_COSTS,
) -> tuple[str | None, bool]:
    """Where a session that no phase needs to itself joins, and whether it waits `wait` seconds first.

    Elevation state cannot leave its phase, so once a session has fetched in a
    phase it is bound there; a session that doubles up a phase is worth most on
    the phase that really finishes last, which the 1–3 s parts lists decide as
    they come in. So it stands by in phase state while joining the phase that
    lags after the wait would still finish it a parts list before the next
    phase, and then joins the phase that lags. (None, False): no phase is
    shortened by it any more.
    """
    phases = [phase for phase, count in remaining.items() if count > 0]
    if not phases:
        return None, False
    starts = {p: _starts(working.get(p, 0), in_flight.get(p, 0), costs) for p in phases}
    finishes = {p: phase_finish(remaining[p], starts[p], costs) for p in phases}
    laggard = max(phases, key=finishes.__getitem__)
    if not starts[laggard]:
        return laggard, False  # nobody on it: it needs this session now
    if phase_finish(remaining[laggard], [*starts[laggard], costs.select_phase], costs) >= finishes[laggard]:
        return None, False
    others = max((finishes[p] for p in phases if p != laggard), default=0.0)
    later = phase_finish(remaining[laggard], [*starts[laggard], wait + costs.select_phase], costs)
    return laggard, later + costs.per_parts_list <= others


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

"""Cost model and work planning for LogiKal sessions.

A login costs 4.5–9 s, a select 0.06–0.7 s, a parts list 1–3 s (docs/logikal-api.md §4),
so the plan is about logins: one session walks a whole project's listing,
sibling phases in turn; parts lists need elevation state, which cannot leave
its phase, so each phase with work needs a session of its own; a large phase
is split only when the pool has idle sessions and the split saves more than
the extra login costs.

`minimal_calls` and `lower_bound_seconds` state what the session rules force
on any client; the benchmark divides its wall time by that bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from logikal_square_sync.logikal.engine.navigation import Step


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
class PartsListChunk:
    """Elevations of one phase whose parts lists one session fetches in a row."""

    phase_id: str
    elevation_ids: tuple[str, ...]

    def cost(self, costs: CostModel = DEFAULT_COSTS) -> float:
        return len(self.elevation_ids) * costs.per_parts_list


def _split(ids: Sequence[str], pieces: int) -> list[tuple[str, ...]]:
    """`ids` cut into `pieces` runs whose lengths differ by at most one."""
    size, extra = divmod(len(ids), pieces)
    cuts, start = [], 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        cuts.append(tuple(ids[start:end]))
        start = end
    return cuts


def estimated_makespan(
    sizes: Sequence[int], *, pool_size: int, ready_sessions: int, costs: CostModel = DEFAULT_COSTS
) -> float:
    """Seconds until chunks of these sizes are fetched, largest first on the earliest free session.

    `ready_sessions` stand in the project already; the others log in first. A
    session that has fetched a chunk is stuck in that phase's elevation state,
    so its next chunk starts with a new login.
    """
    starts = [
        0.0 if index < ready_sessions else costs.new_phase_session - costs.select_phase
        for index in range(pool_size)
    ]
    used = [False] * pool_size
    for size in sorted(sizes, reverse=True):
        ready = [
            start + (costs.new_phase_session if busy else costs.select_phase)
            for start, busy in zip(starts, used, strict=True)
        ]
        worker = min(range(pool_size), key=ready.__getitem__)
        starts[worker], used[worker] = ready[worker] + size * costs.per_parts_list, True
    return max(starts)


def chunk_parts_lists(
    work: Mapping[str, Sequence[str]],
    *,
    pool_size: int,
    ready_sessions: int = 1,
    sibling_elevations: bool = True,
    costs: CostModel = DEFAULT_COSTS,
) -> list[PartsListChunk]:
    """Cut each phase's elevations into chunks, the largest first.

    With sibling selects one session can fetch a whole phase. A phase is cut
    into more (even) pieces only while that shortens the estimated makespan:
    a piece needs a session of its own, which costs a login unless it is
    already standing by. Without sibling selects every elevation is a chunk.
    """
    if pool_size < 1:
        raise ValueError("pool_size must be >= 1")
    if not sibling_elevations:
        chunks = [PartsListChunk(phase, (elevation,)) for phase, ids in work.items() for elevation in ids]
        return sorted(chunks, key=lambda chunk: chunk.phase_id)
    phases = {phase: list(ids) for phase, ids in work.items() if ids}
    pieces = dict.fromkeys(phases, 1)

    def makespan(plan: Mapping[str, int]) -> float:
        sizes = [len(cut) for phase, count in plan.items() for cut in _split(phases[phase], count)]
        return estimated_makespan(sizes, pool_size=pool_size, ready_sessions=ready_sessions, costs=costs)

    best = makespan(pieces)
    while True:
        options = [
            (makespan({**pieces, phase: pieces[phase] + 1}), phase)
            for phase in phases
            if pieces[phase] < len(phases[phase])
        ]
        if not options or min(options)[0] >= best:
            break
        best, phase = min(options)
        pieces[phase] += 1
    chunks = [
        PartsListChunk(phase, cut) for phase, count in pieces.items() for cut in _split(phases[phase], count)
    ]
    return sorted(chunks, key=lambda chunk: -len(chunk.elevation_ids))


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

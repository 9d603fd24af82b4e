"""Cost model and work planning for LogiKal sessions.

A login costs 4.5–9 s, a select 0.06–0.7 s, a parts list 1–3 s (notes §1),
so the plan is about logins: one session walks a whole project's listing,
sibling phases in turn; parts lists need elevation state, which cannot leave
its phase, so each phase with work needs a session of its own; a large phase
is split only when the pool has idle sessions and the split saves more than
the extra login costs.

`minimal_calls` and `lower_bound_seconds` state what the session rules force
on any client; the benchmark divides its wall time by that bound.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from logikal_square_sync.logikal.navigation import Step


@dataclass(frozen=True)
class CostModel:
    """Mean seconds per call, from the middleware's measured latencies (notes §1)."""

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


def chunk_parts_lists(
    work: Mapping[str, Sequence[str]],
    *,
    pool_size: int,
    sibling_elevations: bool,
    costs: CostModel = DEFAULT_COSTS,
) -> list[PartsListChunk]:
    """Cut each phase's elevations into chunks, the largest first.

    With sibling selects one session fetches a whole phase; a phase larger
    than an even share of the total (`total / pool_size`) is cut into even
    chunks, but never below what pays for the extra login. Without sibling
    selects every elevation needs its own session.
    """
    if pool_size < 1:
        raise ValueError("pool_size must be >= 1")
    chunks: list[PartsListChunk] = []
    if not sibling_elevations:
        chunks = [PartsListChunk(phase, (elevation,)) for phase, ids in work.items() for elevation in ids]
    else:
        total = sum(len(ids) for ids in work.values())
        worth_a_login = math.ceil(costs.new_phase_session / costs.per_parts_list)
        share = max(worth_a_login, math.ceil(total / pool_size)) if total else 1
        for phase, ids in work.items():
            if not ids:
                continue
            pieces = math.ceil(len(ids) / share)
            size = math.ceil(len(ids) / pieces)
            chunks.extend(
                PartsListChunk(phase, tuple(ids[start : start + size])) for start in range(0, len(ids), size)
            )
    return sorted(chunks, key=lambda chunk: -len(chunk.elevation_ids))


# -- what the rules force on any client (benchmark) --------------------------------


def minimal_calls(
    elevations_per_phase: Sequence[int], fetched_per_phase: Sequence[int] | None = None, *, sibling_elevations: bool = True
) -> Counter[str]:
    """The fewest calls that list a project and fetch the given parts lists under the session rules.

    Each session logs in, selects the directory and the project, and logs out.
    Elevation state cannot leave its phase, so every phase with parts lists to
    fetch needs a session of its own (every elevation, without sibling
    selects); the listing can share one of them. Every phase is selected and
    listed once, and once more by each further session that fetches in it.
    """
    fetched = list(fetched_per_phase if fetched_per_phase is not None else elevations_per_phase)
    phases = len(elevations_per_phase)
    if sibling_elevations:
        sessions = sum(1 for count in fetched if count)
    else:
        sessions = sum(fetched)
    sessions = max(sessions, 1)
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


def lower_bound_seconds(calls: Mapping[str, int], seconds_per_call: Mapping[str, float], pool_size: int) -> float:
    """Total time of `calls` spread perfectly over `pool_size` sessions.

    No session runs two calls at once and none can help another, so no
    schedule beats the total divided by the number of sessions.
    """
    return sum(seconds_per_call[label] * count for label, count in calls.items()) / pool_size

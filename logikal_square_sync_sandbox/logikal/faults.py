"""Request-level faults queued per endpoint: errors, stalls, truncated bodies, lost answers, false 404s.

State-level faults (locked elevations, parts lists broken at the source,
expired tokens) belong to the data and the sessions; random ones (a share of
parts lists cut short, a share of calls answered 500) are config fields drawn
by `LogikalSandbox`; these here hit the next N calls of one endpoint, whatever
the session, and are consumed in order.

- `error`: answer `status` (500 unless told) before doing anything.
- `delay`: answer `seconds` (unscaled) later than the latency model says.
- `truncate`: announce the whole body, send half, drop the connection.
- `lost_response`: do the work (a select moves the session), then close the
  connection without sending a byte, as when a connection dies after the
  server applied a call; the client cannot tell whether the call happened.
- `applied_error`: do the work (a select moves the session), then answer
  `status` (give 502 or 504) with a gateway's page, as when a gateway gives up
  waiting for a server that then applies the call anyway.
- `not_found`: a select answers 404 for its target, which exists (a one-off
  404 the real server may send; only for `POST …/select` endpoints).

`ListingFaults` are per target instead: the next `GET /projects` of a
directory, `GET /phases` of a project, or `GET /elevations` of a phase, answers
200 with a short list once (empty, or shrunken to the first half), whichever
session asks. Nothing says LogiKal never sends one (docs/logikal-api.md §11),
and a client that takes it at its word marks live rows deleted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

FaultKind = Literal["error", "delay", "truncate", "lost_response", "applied_error", "not_found"]
# Which listing answers short: a directory's projects, a project's phases, or a phase's elevations.
ListingKind = Literal["projects", "phases", "elevations"]
# How short: nothing at all, or the first half (rounded down) of what is there.
ShortListing = Literal["empty", "shrunken"]
# A listing's target: (directory path,) for projects, (project id,) for phases, (project id, phase id)
# for elevations.
ListingTarget = tuple[str, ...]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 500
    seconds: float = 0.0
    message: str = "An unexpected error occurred while processing the request."


class FaultQueue:
    def __init__(self, known_endpoints: frozenset[str]) -> None:
        self._known = known_endpoints
        self._queues: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()

    def add(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        # A typo in an endpoint label would silently inject nothing, and the
        # test that relied on it would pass for the wrong reason.
        if endpoint not in self._known:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(self._known)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queues.setdefault(endpoint, deque()).extend([fault] * times)

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._queues.get(endpoint)
            return queue.popleft() if queue else None

    def pending(self, endpoint: str | None = None) -> int:
        with self._lock:
            if endpoint is not None:
                return len(self._queues.get(endpoint, ()))
            return sum(len(queue) for queue in self._queues.values())

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


class ListingFaults:
    """Listings answered short once per target (see the module's docstring)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[ListingKind, ListingTarget], ShortListing] = {}
        self._lock = threading.Lock()

    def add(self, kind: ListingKind, targets: Iterable[ListingTarget], how: ShortListing) -> None:
        if kind not in ("projects", "phases", "elevations"):
            raise ValueError(f"unknown listing {kind!r}; expected 'projects', 'phases' or 'elevations'")
        if how not in ("empty", "shrunken"):
            raise ValueError(f"unknown short listing {how!r}; expected 'empty' or 'shrunken'")
        size = 2 if kind == "elevations" else 1
        with self._lock:
            for target in targets:
                if len(target) != size:
                    raise ValueError(f"a {kind} listing's target is {size} id(s), got {target!r}")
                self._pending[(kind, target)] = how

    def apply(self, kind: ListingKind, target: ListingTarget, items: Sequence[_T]) -> list[_T]:
        """`items` as this listing answers them: short when a fault waits for the target (used up)."""
        with self._lock:
            how = self._pending.pop((kind, target), None)
        if how is None:
            return list(items)
        return [] if how == "empty" else list(items[: len(items) // 2])

    def pending(self, kind: ListingKind | None = None) -> list[ListingTarget]:
        with self._lock:
            return sorted(target for (k, target) in self._pending if kind is None or k == kind)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

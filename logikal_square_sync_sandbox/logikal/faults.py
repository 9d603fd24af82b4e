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
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["error", "delay", "truncate", "lost_response", "applied_error", "not_found"]


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

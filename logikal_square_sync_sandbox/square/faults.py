"""Fault injection and request counters.

Tests arm faults from their own thread while the server answers in another,
so both the plan and the counters are lock-protected.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

ENDPOINTS = ("locations", "catalog_search", "orders_search", "inventory_counts")
FAULT_KINDS = (
    "rate_limit",  # 429 RATE_LIMITED, optionally with Retry-After
    "server_error",  # 500 INTERNAL_SERVER_ERROR (or status=502/503/504)
    "slow",  # answer normally after delay_seconds
    "hold",  # answer normally once the test calls `release()` (or the plan is cleared): no timing race
    "truncated",  # full Content-Length, part of the body, then the connection is closed
    "cut_json",  # a complete HTTP 200 whose body is cut short (Content-Length matches): invalid JSON
    "drop_connection",  # connection closed without any response
    "expired_cursor",  # the next request carrying a cursor gets 400 INVALID_CURSOR
    "unauthorized",  # 401 UNAUTHORIZED (or code="ACCESS_TOKEN_EXPIRED")
    "forbidden",  # 403 INSUFFICIENT_SCOPES
)


@dataclass
class Fault:
    kind: str
    endpoint: str | None = None
    times: int | None = 1  # None: every matching request from now on
    after_calls: int = 0  # let this many matching requests through first
    retry_after: float | None = None
    delay_seconds: float = 0.0
    status: int | None = None
    code: str | None = None
    seen: int = 0
    fired: int = 0
    released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    # The request bodies it fired on, in order: what a test needs to know where a sync stood.
    requests: list[object] = field(default_factory=list, repr=False, compare=False)

    def release(self) -> None:
        """Let held requests answer."""
        self.released.set()

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._held: list[Fault] = []  # exhausted "hold" faults may still hold a request
        self._lock = threading.Lock()

    def inject(
        self,
        kind: str,
        endpoint: str | None = None,
        times: int | None = 1,
        after_calls: int = 0,
        retry_after: float | None = None,
        delay_seconds: float | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
        if kind == "server_error" and status not in (None, 500, 502, 503, 504):
            raise ValueError("server_error status must be 500, 502, 503 or 504")
        if delay_seconds is None:
            delay_seconds = 1.0 if kind == "slow" else 0.0
        fault = Fault(kind, endpoint, times, after_calls, retry_after, delay_seconds, status, code)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault and let any held request answer."""
        with self._lock:
            for fault in self._faults + self._held:
                fault.release()
            self._held.clear()
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def take(self, endpoint: str, has_cursor: bool) -> Fault | None:
        """Count one request against every matching fault; return the first one that fires."""
        chosen = None
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or fault.endpoint not in (None, endpoint):
                    continue
                fault.seen += 1
                if chosen is not None or fault.seen <= fault.after_calls:
                    continue
                if fault.kind == "expired_cursor" and not has_cursor:
                    continue
                fault.fired += 1
                chosen = fault
            self._held += [f for f in self._faults if f.exhausted and f.kind == "hold"]
            self._faults = [f for f in self._faults if not f.exhausted]
        return chosen


@dataclass
class SandboxStats:
    calls: Counter[str] = field(default_factory=Counter)  # per endpoint, faulted calls included
    requests: int = 0  # every HTTP request, unknown paths included
    faults_fired: Counter[str] = field(default_factory=Counter)  # per fault kind
    responses: Counter[int] = field(default_factory=Counter)  # per HTTP status sent
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_request(self, endpoint: str | None) -> None:
        with self._lock:
            self.requests += 1
            if endpoint is not None:
                self.calls[endpoint] += 1

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self.faults_fired[kind] += 1

    def record_response(self, status: int) -> None:
        with self._lock:
            self.responses[status] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faults_fired.clear()
            self.responses.clear()
            self.requests = 0

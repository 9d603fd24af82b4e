"""Latency model of the LogiKal MBIOE API, as data.

Measured figures come from the old middleware's logs (docs/logikal-api.md §4): login 4.5–9 s,
directory select 0.06–0.2 s, project select ~0.7 s, phase and elevation select
~0.3 s, thumbnail ~0.05 s, parts list 1–3 s. Listing calls were never timed
separately; they are modelled at 0.1–0.2 s, which is what the logs' gaps
between selects leave room for. Every call is a uniform draw in [low, high].

The benchmark computes the best time any client could reach from this table
(`LatencyModel.lower_bound`), so the numbers live here as plain data and the
server only ever multiplies them by `time_scale`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallLatency:
    """Uniform latency range of one endpoint, in real (unscaled) seconds."""

    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


# Keys are the sandbox's endpoint labels ("METHOD <swagger path>"), the same
# keys `LogikalSandbox.stats.calls` counts, so a benchmark can multiply the
# observed call counts by these ranges directly.
DEFAULT_LATENCIES: Mapping[str, CallLatency] = {
    "GET /version": CallLatency(0.005, 0.02),
    "POST /auth": CallLatency(4.5, 9.0),
    "DELETE /auth": CallLatency(0.05, 0.1),
    "GET /directories": CallLatency(0.1, 0.2),
    "POST /directories/select": CallLatency(0.06, 0.2),
    "GET /projects": CallLatency(0.1, 0.2),
    "POST /projects/select": CallLatency(0.6, 0.8),
    "GET /projects/selected": CallLatency(0.05, 0.1),
    "GET /phases": CallLatency(0.1, 0.2),
    "POST /phases/select": CallLatency(0.25, 0.35),
    "GET /elevations": CallLatency(0.1, 0.2),
    "POST /elevations/select": CallLatency(0.25, 0.35),
    "GET /elevations/{elevationId}/thumbnail": CallLatency(0.04, 0.06),
    "GET /elevations/selected/thumbnail": CallLatency(0.04, 0.06),
    "GET /elevations/selected/quotation-price": CallLatency(0.1, 0.2),
    "GET /elevations/selected/parts-list": CallLatency(1.0, 3.0),
}


@dataclass
class LatencyModel:
    """Per-endpoint latency ranges multiplied by `time_scale` (0 disables all waits)."""

    time_scale: float = 0.0
    calls: Mapping[str, CallLatency] = field(default_factory=lambda: dict(DEFAULT_LATENCIES))
    seed: int = 11

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self._rng = random.Random(self.seed)
        # The server samples from several event-loop tasks and the tests from
        # their own thread; random.Random is not safe to share without a lock.
        self._lock = threading.Lock()

    def range(self, endpoint: str) -> CallLatency:
        """Unscaled range of an endpoint; unknown endpoints cost nothing."""
        return self.calls.get(endpoint, CallLatency(0.0, 0.0))

    def low(self, endpoint: str) -> float:
        return self.range(endpoint).low * self.time_scale

    def high(self, endpoint: str) -> float:
        return self.range(endpoint).high * self.time_scale

    def mean(self, endpoint: str) -> float:
        return self.range(endpoint).mean * self.time_scale

    def sample(self, endpoint: str) -> float:
        """Seconds to wait for one call (scaled)."""
        if self.time_scale == 0:
            return 0.0
        spec = self.range(endpoint)
        with self._lock:
            value = self._rng.uniform(spec.low, spec.high)
        return value * self.time_scale

    def lower_bound(self, call_counts: Mapping[str, int], parallelism: int = 1) -> float:
        """Best possible wall time for these calls (scaled seconds).

        Sums each call's minimum latency and divides by the number of sessions
        that run in parallel, since calls of one session are sequential and
        sessions overlap perfectly at best.
        """
        if parallelism < 1:
            raise ValueError("parallelism must be >= 1")
        total = sum(self.low(endpoint) * count for endpoint, count in call_counts.items())
        return total / parallelism

    def expected(self, call_counts: Mapping[str, int]) -> float:
        """Expected sequential time of these calls (scaled seconds)."""
        return sum(self.mean(endpoint) * count for endpoint, count in call_counts.items())

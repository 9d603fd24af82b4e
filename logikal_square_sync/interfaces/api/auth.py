"""Bearer tokens, compared in constant time, and a per-token rate limit.

Hand-written: Starlette has no token auth or rate limiter of its own, and the few lines here
spare the product a dependency (slowapi and the like pull in more than they would save).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.requests import Request


def client_of(request: Request, tokens: tuple[str, ...]) -> int | None:
    """The index of the request's token in LSS_API_TOKENS, or None (missing or wrong).

    Every configured token is compared, each with hmac.compare_digest, so the time taken says
    nothing about which token (or how much of one) matched.
    """
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    offered = given.strip().encode()
    matched = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(offered, token.encode()):
            matched = index
    return matched


class RateLimiter:
    """At most `per_minute` requests per client in any sliding 60 s (a log of request times)."""

    WINDOW = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: int) -> float | None:
        """None: the request may go ahead (and is counted); else seconds until one may."""
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(client, deque())
            while seen and now - seen[0] >= self.WINDOW:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return self.WINDOW - (now - seen[0])
            seen.append(now)
            return None

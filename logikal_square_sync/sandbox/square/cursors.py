"""Server-side pagination state behind opaque cursors.

The first request of a search fixes its result set (a "chain": the matching
rows in order, plus the instant it ran, which is the default `end_at`). Each
page hands out a fresh opaque token pointing into the chain. Tokens are bound
to the request body they came from (minus the cursor), stay reusable so a
client can retry a failed page, and expire after a period of non-use, as
Square's do.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request


def body_fingerprint(endpoint: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(
        {k: v for k, v in body.items() if k != "cursor"}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


@dataclass
class Chain:
    endpoint: str
    fingerprint: str
    items: Any  # numpy row array or list of keys, in result order
    started_ms: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Token:
    chain: Chain
    offset: int
    last_used: float


class CursorStore:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def issue(self, chain: Chain, offset: int) -> str:
        token = secrets.token_urlsafe(36)
        with self._lock:
            self._purge()
            self._tokens[token] = _Token(chain, offset, self._clock())
        return token

    def resolve(self, token: str, endpoint: str, fingerprint: str) -> tuple[Chain, int]:
        with self._lock:
            self._purge()
            entry = self._tokens.get(token)
            if entry is None:
                raise bad_request("INVALID_CURSOR", "The cursor is invalid or has expired.", "cursor")
            if entry.chain.endpoint != endpoint or entry.chain.fingerprint != fingerprint:
                raise bad_request(
                    "INVALID_CURSOR",
                    "The cursor does not belong to this request: resend the original body.",
                    "cursor",
                )
            # Each use extends the cursor's life.
            entry.last_used = self._clock()
            return entry.chain, entry.offset

    def invalidate(self, token: str | None = None) -> None:
        """Forget one token's whole chain, or every token when none is given."""
        with self._lock:
            if token is None:
                self._tokens.clear()
                return
            entry = self._tokens.get(token)
            if entry is None:
                return
            for key in [k for k, v in self._tokens.items() if v.chain is entry.chain]:
                del self._tokens[key]

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._tokens)

    def _purge(self) -> None:
        cutoff = self._clock() - self.ttl_seconds
        for key in [k for k, v in self._tokens.items() if v.last_used < cutoff]:
            del self._tokens[key]

"""Server-side pagination state behind opaque cursors.

The first request of a search starts a "chain": the instant it ran (the
default `end_at`) and, with pinned result sets, the matching rows in order,
fixed from then on. With live result sets the chain keeps the query instead
and every page re-evaluates it as the data stands then, serving the slice at
the cursor's offset, like offset paging over a live table. Each page hands
out a fresh opaque token pointing into the chain. Tokens are bound to the
request body they came from (minus the cursor), stay reusable so a client can
retry a failed page, and expire after a period of non-use, as Square's do.

Pinned chains hold their rows, so the store also forgets the least recently
used chains once they hold more than `max_retained_items` rows between them
(a client that starts a new query for every page would otherwise pile up a
result set per page for a whole TTL); their cursors then answer
INVALID_CURSOR, as expired ones do.
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
    items: Any  # pinned: numpy row array or list of keys, in result order; live: None
    started_ms: int
    meta: dict[str, Any] = field(default_factory=dict)
    # Live result sets: evaluates the query as the data stands now (same result order rules).
    query: Callable[[], Any] | None = None

    def current_items(self) -> Any:
        return self.query() if self.query is not None else self.items

    @property
    def retained(self) -> int:
        return 0 if self.items is None else len(self.items)


@dataclass
class _Token:
    chain: Chain
    offset: int
    last_used: float


DEFAULT_MAX_RETAINED_ITEMS = 4_000_000  # ~32 MB of order rows


class CursorStore:
    def __init__(
        self,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_retained_items: int = DEFAULT_MAX_RETAINED_ITEMS,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_retained_items = max_retained_items
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def issue(self, chain: Chain, offset: int) -> str:
        token = secrets.token_urlsafe(36)
        with self._lock:
            self._purge()
            self._tokens[token] = _Token(chain, offset, self._clock())
            self._evict_beyond_budget(keep=chain)
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

    def _evict_beyond_budget(self, keep: Chain) -> None:
        last_used: dict[int, float] = {}
        chains: dict[int, Chain] = {}
        for entry in self._tokens.values():
            key = id(entry.chain)
            chains[key] = entry.chain
            last_used[key] = max(last_used.get(key, entry.last_used), entry.last_used)
        total = sum(chain.retained for chain in chains.values())
        if total <= self.max_retained_items:
            return
        doomed: set[int] = set()
        for key in sorted(chains, key=last_used.__getitem__):
            if total <= self.max_retained_items:
                break
            if chains[key] is keep:
                continue
            doomed.add(key)
            total -= chains[key].retained
        for token in [t for t, entry in self._tokens.items() if id(entry.chain) in doomed]:
            del self._tokens[token]

    def _purge(self) -> None:
        cutoff = self._clock() - self.ttl_seconds
        for key in [k for k, v in self._tokens.items() if v.last_used < cutoff]:
            del self._tokens[key]

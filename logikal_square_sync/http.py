"""One retrying httpx client for both vendors: exponential backoff with full jitter.

Retries 429, 5xx, connection errors, timeouts and truncated bodies, and
honours `Retry-After` when the server sends it. Other 4xx are the caller's to
map to a clear error: retrying them cannot help. Hand-written because httpx's
transport retries cover connect errors only, and the backoff libraries
(tenacity, backoff) know nothing of `Retry-After` or of a body cut short after
the status line.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_ERRORS = (
    httpx.TransportError,  # connect/read/write errors and timeouts, incomplete bodies
    json.JSONDecodeError,  # a body truncated with a matching Content-Length
)


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # Retry-After above this is not waited out: the sync fails and the next run resumes.
    max_retry_after: float = 120.0

    def backoff(self, attempt: int) -> float:
        # "Full jitter" (AWS architecture blog): uniform in [0, min(cap, base * 2^n)].
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    retried_by_reason: dict[str, int] = field(default_factory=dict)

    def count_retry(self, reason: str) -> None:
        self.retries += 1
        self.retried_by_reason[reason] = self.retried_by_reason.get(reason, 0) + 1


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one reads the whole CA bundle (~40 ms of CPU), and a
    LogiKal sync opens a client per session. Honours SSL_CERT_FILE / SSL_CERT_DIR like httpx does."""
    return httpx.create_ssl_context(trust_env=True)


class RetriesExhausted(RuntimeError):
    """The last attempt failed too; `response` is its answer (None after a transport error)."""

    def __init__(self, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status_code

    @property
    def body(self) -> bytes:
        # Retried responses are read in full (no streaming), so the body is there to show.
        return b"" if self.response is None else self.response.content


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        # HTTP-date form: rarely used by APIs; treat as "unknown" and back off normally.
        return None


class RetryingClient:
    """Sends a request and returns a response whose body has been read and decoded.

    `decode` turns a complete response into the caller's value (JSON by
    default); it runs inside the retry loop so a body cut short is retried
    like any other transient failure.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers or {},
            timeout=timeout,
            transport=transport,
            verify=tls_context(),
        )
        self.retry = retry or RetryPolicy()
        self.stats = CallStats()
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RetryingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        decode: Callable[[httpx.Response], Any] = lambda response: response.json(),
        retry_transport_errors: bool = True,
        retry_server_errors: bool = True,
        **kwargs: Any,
    ) -> tuple[httpx.Response, Any]:
        """Returns `(response, decoded body)`; the body is decoded only for 2xx responses.

        `retry_transport_errors=False` raises a connection error, timeout or cut body at
        once, for calls that change server-side state the caller must then re-establish
        (a LogiKal select the server may have applied before the answer was lost).
        `retry_server_errors=False` returns a 5xx answer at once, for the same calls: a
        gateway's 502 or 504 may come after the server behind it applied the call. A 429
        is retried either way (a rate limit refuses a call before it is applied).
        """
        attempt = 0
        while True:
            self.stats.calls += 1
            try:
                response = self._client.request(method, url, **kwargs)
                if response.status_code in RETRYABLE_STATUS and (
                    retry_server_errors or response.status_code == 429
                ):
                    reason = f"HTTP {response.status_code}"
                    wait = _retry_after_seconds(response)
                else:
                    return response, (decode(response) if response.is_success else None)
            except _TRANSIENT_ERRORS as error:
                if not retry_transport_errors:
                    raise
                reason, wait, response = type(error).__name__, None, None
            attempt += 1
            if attempt >= self.retry.max_attempts:
                raise RetriesExhausted(
                    f"{method} {url} still failing after {attempt} attempts (last: {reason})", response
                )
            if wait is None:
                wait = self.retry.backoff(attempt)
            elif wait > self.retry.max_retry_after:
                raise RetriesExhausted(
                    f"{method} {url}: server asks to wait {wait:.0f}s ({reason})", response
                )
            self.stats.count_retry(reason)
            log.warning("%s %s: %s, retry %d in %.2fs", method, url, reason, attempt, wait)
            self._sleep(wait)

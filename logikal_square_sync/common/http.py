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
from typing import TYPE_CHECKING, Any

from logikal_square_sync.common import http_errors

if TYPE_CHECKING:
    # httpx (with h11, httpcore, rich) is imported where a request is made: a Dagster process loading
    # the code location, or a run before its step, pays nothing for it.
    import httpx

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def _transient_errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (
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


class CaBundleError(ValueError):
    """A CA bundle setting names a file that cannot be read as PEM certificates."""


@functools.cache
def tls_context(ca_bundle: str | None = None, setting: str = "the CA bundle") -> ssl.SSLContext:
    """The trust store of one API: its own CA bundle (`setting` names the variable, for errors), else
    the public CAs that httpx trusts by default (certifi's Mozilla list).

    An explicit context on purpose: with `verify=True` httpx 0.28 reads SSL_CERT_FILE and
    SSL_CERT_DIR (`create_ssl_context(trust_env=True)`) and then trusts only that file, so a
    CA meant for one purpose (the SMTP relay's) broke every API call. With `verify=<SSLContext>`
    httpx uses the context as given and reads neither variable; `trust_env` keeps its other
    meaning (HTTP(S)_PROXY, NO_PROXY), which the clients keep. Cached: building a context reads
    the whole bundle (~40 ms of CPU) and a LogiKal sync opens a client per session.
    """
    if ca_bundle is None:
        import httpx

        # trust_env=False: httpx's own default store (certifi), never what SSL_CERT_FILE names.
        return httpx.create_ssl_context(trust_env=False)
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CaBundleError(
            f"{setting}={ca_bundle}: cannot load it as a PEM file of CA certificates ({reason})"
        ) from error


class RetriesExhausted(RuntimeError):
    """The last attempt failed too (or a failure no retry can mend); `response` is its answer (None
    after a transport error, which is then the `__cause__`). `host` and `kind` say where and what."""

    def __init__(
        self,
        message: str,
        response: httpx.Response | None = None,
        *,
        host: str = "",
        kind: str = "",
    ) -> None:
        super().__init__(message)
        self.response = response
        self.host = host
        self.kind = kind

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
        ca_bundle: str | None = None,
        ca_bundle_setting: str = "the CA bundle",
    ) -> None:
        import httpx

        self._client = httpx.Client(
            base_url=base_url,
            headers=headers or {},
            timeout=timeout,
            transport=transport,
            verify=tls_context(ca_bundle, ca_bundle_setting),
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
            error: BaseException | None = None
            try:
                response = self._client.request(method, url, **kwargs)
                if response.status_code in RETRYABLE_STATUS and (
                    retry_server_errors or response.status_code == 429
                ):
                    kind, host = "HTTP status", self._host()
                    counted, reason = (
                        f"HTTP {response.status_code}",
                        f"HTTP {response.status_code} from {host}",
                    )
                    wait = _retry_after_seconds(response)
                else:
                    return response, (decode(response) if response.is_success else None)
            except _transient_errors() as caught:
                if not retry_transport_errors:
                    raise
                error, host = caught, http_errors.host_of(caught, self._client.base_url)
                kind = http_errors.failure_kind(caught)
                counted, reason = (
                    type(caught).__name__,
                    http_errors.describe(caught, host, self._client.timeout),
                )
                wait, response = None, None
            # The reason names the host: `url` is relative to the client's base URL.
            where = f"{method} {url}"
            attempt += 1
            if kind is http_errors.FailureKind.TLS and _certificate_refused(error):
                raise RetriesExhausted(
                    f"{where} failed: {reason} (not retried: a certificate does not change between attempts)",
                    response,
                    host=host,
                    kind=kind,
                ) from error
            if attempt >= self.retry.max_attempts:
                raise RetriesExhausted(
                    f"{where} still failing after {attempt} attempts (last: {reason})",
                    response,
                    host=host,
                    kind=kind,
                ) from error
            if wait is None:
                wait = self.retry.backoff(attempt)
            elif wait > self.retry.max_retry_after:
                raise RetriesExhausted(
                    f"{where}: {host} asks to wait {wait:.0f}s ({reason})", response, host=host, kind=kind
                ) from error
            self.stats.count_retry(counted)
            log.warning("%s: %s, retry %d in %.2fs", where, reason, attempt, wait)
            self._sleep(wait)

    def _host(self) -> str:
        url = self._client.base_url
        return f"{url.host}:{url.port}" if url.port else url.host


def _certificate_refused(error: BaseException | None) -> bool:
    return error is not None and any(
        isinstance(link, ssl.SSLCertVerificationError) for link in http_errors._chain(error)
    )

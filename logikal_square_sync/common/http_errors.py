"""What went wrong on the wire, in words: the host and the kind of failure of an HTTP call.

httpx says `ConnectError` for an untrusted certificate, an unknown host name and a
refused connection alike; the difference is in the exceptions it chains (httpcore's,
then the socket's or the ssl module's). An operator needs it to know where to look:
a CA setting, DNS, a firewall or a server that is down, or a slow server.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported where an error is read (see common/http.py): loading the code location pays nothing.
    import httpx


class FailureKind(StrEnum):
    TLS = "TLS"
    DNS = "DNS"
    REFUSED = "connection refused"
    TIMEOUT = "timeout"
    CUT = "answer cut short"
    OTHER = "network error"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from (or while handling), innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_kind(error: BaseException) -> FailureKind:
    import httpx

    for link in _chain(error):
        if isinstance(link, ssl.SSLError | ssl.CertificateError):
            return FailureKind.TLS
        if isinstance(link, socket.gaierror):
            return FailureKind.DNS
        if isinstance(link, ConnectionRefusedError) or getattr(link, "errno", None) == errno.ECONNREFUSED:
            return FailureKind.REFUSED
    if isinstance(error, httpx.TimeoutException):
        return FailureKind.TIMEOUT
    if isinstance(error, httpx.RemoteProtocolError | json.JSONDecodeError):
        return FailureKind.CUT
    # httpcore words some of these only in its message (no chained OS error).
    text = str(error).lower()
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return FailureKind.DNS
    if "connection refused" in text:
        return FailureKind.REFUSED
    if "certificate" in text or "ssl" in text:
        return FailureKind.TLS
    return FailureKind.OTHER


def host_of(error: BaseException, fallback: httpx.URL | None = None) -> str:
    """`host:port` of the request that failed."""
    import httpx

    url = None
    if isinstance(error, httpx.RequestError):
        try:
            url = error.request.url
        except RuntimeError:  # an error raised outside a request has none
            url = None
    url = url or fallback
    if url is None:
        return "the server"
    return f"{url.host}:{url.port}" if url.port else url.host


def describe(error: BaseException, host: str, timeout: httpx.Timeout | None = None) -> str:
    """One line: the kind of failure, the host, and the deepest error's own words."""
    kind = failure_kind(error)
    innermost = list(_chain(error))[-1]
    detail = _words(innermost)
    if kind is FailureKind.TLS:
        tls = next((link for link in _chain(error) if isinstance(link, ssl.SSLError)), innermost)
        if isinstance(tls, ssl.SSLCertVerificationError):
            return (
                f"TLS: the certificate of {host} is not trusted (CERTIFICATE_VERIFY_FAILED: "
                f"{tls.verify_message}); check the CA bundle setting of this API"
            )
        return f"TLS: the handshake with {host} failed ({getattr(tls, 'reason', None) or _words(tls)})"
    if kind is FailureKind.DNS:
        return f"DNS: the host name of {host} cannot be resolved ({detail})"
    if kind is FailureKind.REFUSED:
        return f"connection refused by {host}: nothing listens there, or a firewall rejects it"
    if kind is FailureKind.TIMEOUT:
        return f"timeout: {_timeout_words(error, host, timeout)}"
    if kind is FailureKind.CUT:
        return f"answer cut short by {host} ({type(error).__name__}: {detail})"
    return f"network error talking to {host} ({type(error).__name__}: {detail})"


def _timeout_words(error: BaseException, host: str, timeout: httpx.Timeout | None) -> str:
    import httpx

    def seconds(value: float | None) -> str:
        return f" within {value:g} s" if value is not None else ""

    if isinstance(error, httpx.ConnectTimeout):
        return f"no connection to {host}{seconds(timeout.connect if timeout else None)}"
    if isinstance(error, httpx.ReadTimeout):
        return (
            f"{host} accepted the connection but sent no answer{seconds(timeout.read if timeout else None)}"
        )
    if isinstance(error, httpx.WriteTimeout):
        return f"{host} did not take the request{seconds(timeout.write if timeout else None)}"
    if isinstance(error, httpx.PoolTimeout):
        return f"no free connection to {host}{seconds(timeout.pool if timeout else None)}"
    return f"{host} did not answer in time"


def _words(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__

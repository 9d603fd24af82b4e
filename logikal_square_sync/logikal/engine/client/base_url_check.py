"""Whether LOGIKAL_BASE_URL may be plain http: every login sends the LogiKal password in the body."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

ALLOW_HTTP_ENV = "LOGIKAL_ALLOW_HTTP"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class InsecureBaseUrlError(ValueError):
    """LOGIKAL_BASE_URL is http:// (or not a URL) and LOGIKAL_ALLOW_HTTP does not accept it."""


def allow_http_from_env() -> bool:
    """LOGIKAL_ALLOW_HTTP as a flag (default false); an unknown value fails naming the variable."""
    value = os.environ.get(ALLOW_HTTP_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InsecureBaseUrlError(f"{ALLOW_HTTP_ENV}={value!r}: expected true or false")


def check_base_url(base_url: str, *, allow_http: bool) -> None:
    """Refuse an http:// LogiKal URL unless http is explicitly allowed; refuse anything not http(s)."""
    parts = urlsplit(base_url.strip())
    # Only scheme and host in the message: a URL may carry user:password@ (never log it).
    where = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if allow_http:
            return
        raise InsecureBaseUrlError(
            f"LOGIKAL_BASE_URL is plain http ({where}): every LogiKal login would send "
            f"LOGIKAL_PASSWORD in clear. Use an https:// URL, or set {ALLOW_HTTP_ENV}=true to accept "
            "http on a trusted network (the sandbox, the demo)"
        )
    raise InsecureBaseUrlError(
        f"LOGIKAL_BASE_URL ({where or 'empty'}) is not an http(s) URL, "
        "e.g. https://host/MbioeService.svc/api/v3"
    )

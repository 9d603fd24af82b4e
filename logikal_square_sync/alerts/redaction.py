"""Keeps alerting secrets (the Slack webhook URL, SMTP credentials) out of logs and messages.

A Slack incoming-webhook URL *is* the credential, and httpx logs every request
URL at INFO level; so each notifier registers its secrets here, and a logging
filter on the HTTP libraries' loggers masks them before any handler sees them.
"""

import logging
import threading

MASK = "<redacted>"
# Shorter values would mask ordinary words; no real webhook URL or password is this short.
_MIN_SECRET_LENGTH = 6
# httpx logs the full request URL; httpcore (its transport) logs only host and port.
_HTTP_LOGGERS = ("httpx",)

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False


def register_secret(value: str | None) -> None:
    """Masks `value` from now on in `redact()` and in the HTTP libraries' log records."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)
        _install_log_filter()


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: a URL before its path
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with every registered secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _install_log_filter() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    for name in _HTTP_LOGGERS:
        logging.getLogger(name).addFilter(RedactingFilter())

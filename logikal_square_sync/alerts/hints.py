"""What to check, by the kind of an error: the line an alert adds so a person can act on it.

Classified from the error's text (the exception class names and messages of
our clients are specific on purpose), each kind points at a section of
`docs/runbook.md`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RUNBOOK = "docs/runbook.md"


@dataclass(frozen=True)
class Hint:
    kind: str
    advice: str
    section: str  # anchor in the runbook

    def runbook(self, base_url: str | None = None) -> str:
        """The runbook section: a link under `base_url` (LSS_RUNBOOK_URL), else its path in the repository."""
        if base_url:
            return f"{base_url.rstrip('/')}#{self.section}"
        return f"{RUNBOOK}#{self.section}"


def _credentials(source: str | None) -> str:
    if source == "square":
        return (
            "Square refused the token: check SQUARE_ACCESS_TOKEN (expired, revoked, or missing the "
            "MERCHANT_PROFILE_READ, ITEMS_READ, ORDERS_READ, INVENTORY_READ scopes)."
        )
    if source == "logikal":
        return "LogiKal refused the login: check LOGIKAL_USERNAME and LOGIKAL_PASSWORD."
    return "A credential was refused: check SQUARE_ACCESS_TOKEN or LOGIKAL_USERNAME / LOGIKAL_PASSWORD."


def _network(source: str | None) -> str:
    variable = {"square": "SQUARE_BASE_URL", "logikal": "LOGIKAL_BASE_URL"}.get(source or "", "the base URLs")
    return (
        f"The API did not answer (timeouts, refused connections or repeated 5xx/429): check {variable}, "
        "the network and the vendor's status; the next run resumes where this one stopped."
    )


# What each kind's errors say; the first kind that matches wins, so the specific kinds come before
# the generic network one (and "lock timeout" before "locked in LogiKal": SQLite's own words are
# "database is locked"). A kind's runbook section is its name as a heading anchor.
_PATTERNS: dict[str, str] = {
    "configuration": r"LOGIKAL_ALLOW_HTTP|InsecureBaseUrlError|is not an http\(s\) URL",
    "deletion limit": r"mass deletion|deletion limit|allow_mass_deletion|refus\w* to mark .* deleted",
    "credentials": (
        r"HTTP 40[13]\b|\b40[13]\b.*(UNAUTHORIZED|FORBIDDEN|INSUFFICIENT_SCOPES)|UNAUTHORIZED|"
        r"ACCESS_TOKEN_(EXPIRED|REVOKED)|INSUFFICIENT_SCOPES|refused the login|LogikalAuthError|"
        r"Invalid session authentication"
    ),
    "lock timeout": (
        r"WarehouseLockTimeout|SessionClaimLockTimeout|lock_timeouts\.|lock timeout|database is locked"
    ),
    "TLS certificate": r"\bTLS: |CERTIFICATE_VERIFY_FAILED|CaBundleError|_CA_BUNDLE=",
    "locked in LogiKal": r"in use by another user|\blocked\b|\(409\)",
    "bad record": r"malformed|MalformedRecord|not an RFC 3339|should be an? |LogikalResponseError",
    "warehouse": r"sqlalchemy|psycopg2|OperationalError|database is locked|WAREHOUSE_URL",
    "run worker died or hung": (
        r"run worker|worker.*(died|exited|lost|crash)|exited unexpectedly|max.?runtime|"
        r"exceeded.*runtime|did not (start|finish)|SIGKILL|signal 9|OOM"
    ),
    "network": (
        r"RetriesExhausted|still failing after|ConnectError|ConnectTimeout|ReadTimeout|Timeout|"
        r"RemoteProtocolError|Connection (refused|reset)|unreachable|Name or service not known|"
        r"\bDNS: |cannot open a LogiKal session|"
        r"HTTP 5\d\d|HTTP 429|RATE_LIMITED"
    ),
}
_RULES = {kind: re.compile(pattern, re.I) for kind, pattern in _PATTERNS.items()}

_ADVICE = {
    "configuration": (
        "A setting of the code server's environment is refused (the error names it, e.g. an http:// "
        "LOGIKAL_BASE_URL without LOGIKAL_ALLOW_HTTP=true): fix it in .env / the Helm values and restart."
    ),
    "deletion limit": (
        "The sync refused to mark many rows deleted at once (a safety limit): check whether they were "
        "really deleted in LogiKal; if so, run again with the config the error names."
    ),
    "locked in LogiKal": (
        "A LogiKal project or elevation is open in LogiKal desktop (in use by another user): its old copy "
        "stays in the warehouse and the next sync tries again once it is closed."
    ),
    "bad record": (
        "The API sent a record that failed validation (the error names it and the field); nothing of its "
        "page was written and earlier data stays. Check that record at the source."
    ),
    "warehouse": (
        "The warehouse could not be reached or written: check WAREHOUSE_URL and the database server."
    ),
    "lock timeout": (
        "A write waited longer than policies.yaml lock_timeouts allows for a lock another connection "
        "held; the error names the lock and where to find its holder. The next run tries again."
    ),
    "TLS certificate": (
        "A server's certificate is not trusted: the error names the host. For LogiKal with a private "
        "CA set LOGIKAL_CA_BUNDLE, for the SMTP relay SMTP_CA_BUNDLE; SSL_CERT_FILE is not used."
    ),
    "run worker died or hung": (
        "The run's process died (out of memory, a redeploy) or ran past its dagster/max_runtime: "
        "its pool slot is freed and the next run resumes from the last committed page."
    ),
    "other": "See the run's logs for the full error.",
}


def hint_for(error_text: str, source: str | None = None) -> Hint:
    """The kind of an error and what to check; `source` is 'square' or 'logikal' when known."""
    for kind, pattern in _RULES.items():
        if pattern.search(error_text):
            section = kind.lower().replace(" ", "-")
            if kind == "credentials":
                return Hint(kind, _credentials(source), section)
            if kind == "network":
                return Hint(kind, _network(source), section)
            return Hint(kind, _ADVICE[kind], section)
    return Hint("other", _ADVICE["other"], "other-errors")

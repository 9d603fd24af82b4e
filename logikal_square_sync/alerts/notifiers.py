"""Alert delivery: Slack incoming webhooks and plain SMTP e-mail.

Each notifier sends one `Alert` or raises `NotifierError` with a message safe
to log (no webhook URL, no password). `send_all` fans an alert out to every
notifier and reports per channel, so one broken channel never silences the
others.
"""

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_email_policy
from email.utils import formatdate, make_msgid
from enum import StrEnum
from typing import Protocol

from logikal_square_sync.alerts.redaction import redact, register_secret

logger = logging.getLogger(__name__)

# Slack truncates long messages anyway; an alert is a pointer to the run, not the full log.
_MAX_BODY_CHARS = 3500
_MAX_SUBJECT_CHARS = 200
# Python folds some 79+ character subjects into an empty first line; RFC 5322 allows 998 per line.
_EMAIL_POLICY = default_email_policy.clone(max_line_length=998)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    RESOLVED = "resolved"


_SLACK_ICONS = {
    Severity.ERROR: ":rotating_light:",
    Severity.WARNING: ":warning:",
    Severity.RESOLVED: ":white_check_mark:",
}


@dataclass(frozen=True)
class Alert:
    """One message to people: a one-line title, a plain-text body and a link into the Dagster UI."""

    title: str
    body: str
    severity: Severity = Severity.ERROR
    link: str | None = None

    def redacted(self) -> "Alert":
        return Alert(redact(self.title), redact(self.body), self.severity, self.link and redact(self.link))

    def plain_text(self) -> str:
        body = _truncate(self.body)
        return f"{body}\n\nOpen in Dagster: {self.link}\n" if self.link else f"{body}\n"


class NotifierError(RuntimeError):
    """A channel refused or could not take an alert; the message is safe to log."""


class AlertDeliveryError(RuntimeError):
    """No channel took the alert: nobody has been told."""


class Notifier(Protocol):
    @property
    def name(self) -> str: ...

    def send(self, alert: Alert) -> None: ...


@dataclass(frozen=True)
class SlackNotifier:
    """Posts `{"text": ...}` to a Slack incoming webhook (the URL is the secret)."""

    webhook_url: str = field(repr=False)
    timeout_seconds: float = 10.0
    name: str = "slack"

    def __post_init__(self) -> None:
        register_secret(self.webhook_url)

    def send(self, alert: Alert) -> None:
        # Imported when an alert is sent: httpx costs a tenth of a second to import, and loading the
        # code location need not pay it (smtplib, a millisecond, stays at the top).
        import httpx

        from logikal_square_sync.http import tls_context
        from logikal_square_sync.http_errors import describe, host_of

        try:
            response = httpx.post(
                self.webhook_url,
                json={"text": slack_text(alert)},
                timeout=self.timeout_seconds,
                # The public CAs, not whatever SSL_CERT_FILE names (see http.tls_context).
                verify=tls_context(),
            )
        except httpx.HTTPError as error:
            # httpx error texts can quote the URL; `from None` keeps the original out of tracebacks.
            # The host and the kind (TLS, DNS, refused, timeout) are not secret: the path is.
            reason = describe(error, host_of(error))
            raise NotifierError(f"Slack webhook unreachable: {redact(reason)}") from None
        if not response.is_success:
            # Slack answers e.g. 403 invalid_token, 404 no_service, 410 channel_is_archived.
            raise NotifierError(
                f"Slack webhook answered HTTP {response.status_code}: {redact(response.text[:200])}"
            )


def slack_text(alert: Alert) -> str:
    icon = _SLACK_ICONS[alert.severity]
    text = f"{icon} *{_slack_escape(alert.title)}*\n{_slack_escape(_truncate(alert.body))}"
    if alert.link:
        text += f"\n<{alert.link}|Open in Dagster>"
    return text


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn reads <...> as links and mentions; error messages often contain them.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class EmailNotifier:
    """Sends a plain-text e-mail through an SMTP relay.

    Port 465 speaks TLS from the start; on any other port the message goes
    over STARTTLS whenever the relay offers it, with or without a login (alert
    texts name projects and errors). Logs in only when a username is given, and
    then only over TLS: a relay that does not offer STARTTLS gets no credentials.
    """

    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30.0
    # SMTP_CA_BUNDLE: a PEM file of the CAs that signed the relay's certificate (a private CA);
    # used for the relay only, so no other client's trust changes. None: the system's trust store.
    ca_bundle: str | None = None
    # Overrides ca_bundle: a ready context.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    name: str = "email"

    def __post_init__(self) -> None:
        register_secret(self.username)
        register_secret(self.password)

    def send(self, alert: Alert) -> None:
        message = email_message(alert, self.sender, self.recipients)
        try:
            self._deliver(message)
        except (smtplib.SMTPException, OSError) as error:
            raise NotifierError(f"SMTP {self.host}:{self.port}: {redact(_describe(error))}") from None

    def _tls_context(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            return self.ssl_context
        if self.ca_bundle is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cafile=self.ca_bundle)
        except (OSError, ssl.SSLError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise NotifierError(
                f"SMTP_CA_BUNDLE={self.ca_bundle}: cannot load it as a PEM file of CA certificates ({reason})"
            ) from error

    def _deliver(self, message: EmailMessage) -> None:
        context = self._tls_context()
        implicit_tls = self.port == 465
        server = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_seconds, context=context)
            if implicit_tls
            else smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        )
        with server:
            server.ehlo()
            encrypted = implicit_tls
            if not implicit_tls and server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
                encrypted = True
            if self.username:
                if not encrypted:
                    raise NotifierError(
                        f"SMTP {self.host}:{self.port} does not offer STARTTLS; "
                        "not sending the credentials in clear text"
                    )
                server.login(self.username, self.password or "")
            server.send_message(message)


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage(policy=_EMAIL_POLICY)
    message["Subject"] = _truncate(f"[{alert.severity.upper()}] {alert.title}", _MAX_SUBJECT_CHARS)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(alert.plain_text())
    return message


@dataclass
class Delivery:
    """Which channels took an alert and why the others did not."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return bool(self.sent)

    def describe(self) -> str:
        parts = [f"sent via {', '.join(self.sent)}"] if self.sent else []
        parts += [f"{name} failed: {reason}" for name, reason in self.failed.items()]
        return "; ".join(parts) or "no channel configured"


def send_all(notifiers: Sequence[Notifier], alert: Alert, log: logging.Logger | None = None) -> Delivery:
    """Sends `alert` through every notifier; never raises for a failing channel, reports it instead."""
    log = log or logger
    alert = alert.redacted()
    delivery = Delivery()
    for notifier in notifiers:
        try:
            notifier.send(alert)
        except Exception as error:  # any failure of one channel must not stop the next
            reason = redact(str(error)) if isinstance(error, NotifierError) else redact(_describe(error))
            delivery.failed[notifier.name] = reason
            log.warning(f"Alert '{alert.title}' not sent via {notifier.name}: {reason}")
        else:
            delivery.sent.append(notifier.name)
    if delivery.sent:
        log.info(f"Alert '{alert.title}' {delivery.describe()}")
    return delivery


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _truncate(text: str, limit: int = _MAX_BODY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Alert delivery: Slack incoming webhooks and plain SMTP e-mail.

Each notifier sends one `Alert` or raises `NotifierError` with a message safe
to log (no webhook URL, no password). A send never outlasts the `Deadline` it is
given: every network wait is clipped to the time left. `outbox.deliver` fans
alerts out to the channels and remembers per channel what is still to send.
"""

import contextlib
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_email_policy
from email.utils import formatdate, make_msgid
from enum import StrEnum
from typing import Protocol

from logikal_square_sync.alerts.deadline import Deadline
from logikal_square_sync.alerts.redaction import redact, register_secret

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


class Notifier(Protocol):
    @property
    def name(self) -> str: ...

    def send(self, alert: Alert, deadline: Deadline | None = None) -> None: ...


def _time_left(timeout: float, deadline: Deadline | None) -> float:
    """A network wait: the channel's own timeout, clipped to the deadline; none left is a timeout."""
    left = deadline.clip(timeout) if deadline else timeout
    if left <= 0:
        raise TimeoutError("no time left in this sensor tick")
    return left


@dataclass(frozen=True)
class SlackNotifier:
    """Posts `{"text": ...}` to a Slack incoming webhook (the URL is the secret)."""

    webhook_url: str = field(repr=False)
    timeout_seconds: float = 10.0
    name: str = "slack"

    def __post_init__(self) -> None:
        register_secret(self.webhook_url)

    def send(self, alert: Alert, deadline: Deadline | None = None) -> None:
        # Imported when an alert is sent: httpx costs a tenth of a second to import, and loading the
        # code location need not pay it (smtplib, a millisecond, stays at the top).
        import httpx

        from logikal_square_sync.common.http import tls_context
        from logikal_square_sync.common.http_errors import describe, host_of

        try:
            # httpx applies the timeout to connecting and to each read and write: a webhook that
            # accepts the connection and never answers gives up when the tick's time is up.
            response = httpx.post(
                self.webhook_url,
                json={"text": slack_text(alert)},
                timeout=_time_left(self.timeout_seconds, deadline),
                # The public CAs, not whatever SSL_CERT_FILE names (see http.tls_context).
                verify=tls_context(),
            )
        except TimeoutError:
            raise NotifierError("Slack webhook: no time left in this sensor tick") from None
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

    def send(self, alert: Alert, deadline: Deadline | None = None) -> None:
        message = email_message(alert, self.sender, self.recipients)
        try:
            self._deliver(message, deadline)
        except (smtplib.SMTPException, OSError) as error:
            raise NotifierError(f"SMTP {self.host}:{self.port}: {redact(describe_error(error))}") from None

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

    def _deliver(self, message: EmailMessage, deadline: Deadline | None) -> None:
        context = self._tls_context()
        implicit_tls = self.port == 465

        def timeout() -> float:
            return _time_left(self.timeout_seconds, deadline)

        server = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=timeout(), context=context)
            if implicit_tls
            else smtplib.SMTP(self.host, self.port, timeout=timeout())
        )

        def step() -> smtplib.SMTP:
            # smtplib keeps the timeout it connected with for every later command; a relay that goes
            # silent mid-dialogue must not hold the tick past its deadline either.
            if server.sock is not None:
                server.sock.settimeout(timeout())
            return server

        try:
            step().ehlo()
            encrypted = implicit_tls
            if not implicit_tls and server.has_extn("starttls"):
                step().starttls(context=context)
                step().ehlo()
                encrypted = True
            if self.username:
                if not encrypted:
                    raise NotifierError(
                        f"SMTP {self.host}:{self.port} does not offer STARTTLS; "
                        "not sending the credentials in clear text"
                    )
                step().login(self.username, self.password or "")
            step().send_message(message)
            # The relay has the message: a QUIT that fails or finds no time left must not make it
            # look undelivered (it would go out again on the next tick).
            with contextlib.suppress(smtplib.SMTPException, OSError):
                step().quit()
        finally:
            server.close()


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage(policy=_EMAIL_POLICY)
    message["Subject"] = _truncate(f"[{alert.severity.upper()}] {alert.title}", _MAX_SUBJECT_CHARS)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(alert.plain_text())
    return message


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _truncate(text: str, limit: int = _MAX_BODY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

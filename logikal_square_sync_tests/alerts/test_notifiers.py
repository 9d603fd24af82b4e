"""The notifiers against a real HTTP webhook stand-in and real SMTP servers."""

import logging
import time

import pytest

from logikal_square_sync.alerts.deadline import Deadline
from logikal_square_sync.alerts.notifiers import (
    Alert,
    EmailNotifier,
    Notifier,
    NotifierError,
    Severity,
    SlackNotifier,
)
from logikal_square_sync.alerts.outbox import Outbox, deliver
from logikal_square_sync_sandbox.server import free_port
from logikal_square_sync_tests.alerts.mail import SMTP_PASSWORD, SMTP_USER, Certificate, Mailbox
from logikal_square_sync_tests.alerts.slack import BROKEN_WEBHOOK_PATH, WEBHOOK_PATH

ALERT = Alert(
    title="Run failed: square/orders",
    body="Job: square_orders_backfill\nRun: 1234\nboom: ValueError: <Square> & co answered 500",
    severity=Severity.ERROR,
    link="http://dagster.example:3000/runs/1234",
)


def test_slack_posts_text_with_title_body_and_link(slack) -> None:
    SlackNotifier(slack.webhook_url).send(ALERT)

    assert len(slack.posts) == 1
    assert set(slack.posts[0]) == {"text"}
    text = slack.texts[0]
    assert "*Run failed: square/orders*" in text
    assert "Run: 1234" in text
    # Slack reads <...> as links: the error's angle brackets arrive escaped.
    assert "ValueError: &lt;Square&gt; &amp; co answered 500" in text
    assert "<http://dagster.example:3000/runs/1234|Open in Dagster>" in text


def test_slack_error_names_status_and_slack_reason_but_not_the_url(slack) -> None:
    with pytest.raises(NotifierError) as raised:
        SlackNotifier(slack.broken_webhook_url).send(ALERT)

    message = str(raised.value)
    assert "HTTP 404" in message and "no_service" in message
    assert BROKEN_WEBHOOK_PATH not in message and "revokedSecretToken0815" not in message


def test_slack_unreachable_is_a_clear_error_without_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}"
    with pytest.raises(NotifierError, match="Slack webhook unreachable") as raised:
        SlackNotifier(url, timeout_seconds=2).send(ALERT)
    assert "webhookSecretToken4711" not in str(raised.value)


def test_email_through_a_plain_relay(smtp) -> None:
    notifier = EmailNotifier(
        host=smtp.host,
        port=smtp.port,
        sender="dagster@example.com",
        recipients=("ops@example.com", "data@example.com"),
    )
    notifier.send(ALERT)

    assert len(smtp.envelopes) == 1
    mail_from, rcpt_tos, _ = smtp.envelopes[0]
    assert mail_from == "dagster@example.com"
    assert rcpt_tos == ["ops@example.com", "data@example.com"]
    message = smtp.messages[0]
    assert message["Subject"] == "[ERROR] Run failed: square/orders"
    assert message["To"] == "ops@example.com, data@example.com"
    body = message.get_content()
    assert "Run: 1234" in body
    assert "ValueError: <Square> & co answered 500" in body
    assert "Open in Dagster: http://dagster.example:3000/runs/1234" in body
    assert smtp.logins == []


def _logging_in(server: Mailbox, password: str, certificate: Certificate | None = None) -> EmailNotifier:
    """A notifier that logs in to `server` as SMTP_USER with `password`, trusting `certificate`."""
    return EmailNotifier(
        host=server.host,
        port=server.port,
        sender=SMTP_USER,
        recipients=("ops@example.com",),
        username=SMTP_USER,
        password=password,
        ssl_context=certificate.client_context() if certificate else None,
    )


def test_email_logs_in_over_starttls(smtp_starttls: Mailbox, certificate: Certificate) -> None:
    notifier = _logging_in(smtp_starttls, SMTP_PASSWORD, certificate)
    notifier.send(ALERT)

    assert smtp_starttls.logins == [SMTP_USER]
    assert [m["Subject"] for m in smtp_starttls.messages] == ["[ERROR] Run failed: square/orders"]
    assert SMTP_PASSWORD not in repr(notifier)


def test_email_wrong_password_is_reported_without_the_password(
    smtp_starttls: Mailbox, certificate: Certificate
) -> None:
    notifier = _logging_in(smtp_starttls, "wrong-password-4711", certificate)
    with pytest.raises(NotifierError, match="SMTPAuthenticationError") as raised:
        notifier.send(ALERT)
    assert "wrong-password-4711" not in str(raised.value)
    assert smtp_starttls.envelopes == []


def test_email_without_login_still_uses_starttls_when_offered(smtp_tls_optional, certificate, smtp) -> None:
    for relay, encrypted in ((smtp_tls_optional, True), (smtp, False)):
        EmailNotifier(
            host=relay.host,
            port=relay.port,
            sender="dagster@example.com",
            recipients=("ops@example.com",),
            ssl_context=certificate.client_context(),
        ).send(ALERT)
        assert relay.encrypted == [encrypted] and relay.logins == []


def test_email_never_sends_credentials_without_tls(smtp) -> None:
    notifier = _logging_in(smtp, SMTP_PASSWORD)
    with pytest.raises(NotifierError, match="does not offer STARTTLS"):
        notifier.send(ALERT)
    assert smtp.envelopes == [] and smtp.logins == []


def test_one_failing_channel_does_not_stop_the_other(slack, smtp, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    notifiers: list[Notifier] = [
        SlackNotifier(slack.broken_webhook_url),
        EmailNotifier(host=smtp.host, port=smtp.port, sender="d@example.com", recipients=("o@example.com",)),
    ]
    outbox = Outbox()
    outbox.add(ALERT, ["slack", "email"], at=0.0, limit=10)
    report = deliver(outbox, notifiers, Deadline.after(30), logging.getLogger("test"))

    assert report.sent == ["'Run failed: square/orders' via email"]
    assert list(report.failed) == ["slack"] and "HTTP 404" in report.failed["slack"]
    assert len(smtp.envelopes) == 1
    assert [item.channels for item in outbox.pending] == [["slack"]]  # e-mail is done with it
    assert "not sent via slack" in caplog.text
    assert "revokedSecretToken0815" not in caplog.text


def test_a_send_never_outlasts_its_deadline(silent_port, slack, smtp) -> None:
    """Each network wait is clipped to the time left, not the channel's own 10 s / 30 s."""
    host, port = slack.url.removeprefix("http://").split(":")
    silent_slack, silent_smtp = silent_port(host, int(port)), silent_port(smtp.host, smtp.port)
    notifiers: list[Notifier] = [
        SlackNotifier(f"http://{silent_slack.host}:{silent_slack.port}{WEBHOOK_PATH}"),
        EmailNotifier(
            host=silent_smtp.host,
            port=silent_smtp.port,
            sender="d@example.com",
            recipients=("o@example.com",),
        ),
    ]
    for notifier in notifiers:
        started = time.monotonic()
        with pytest.raises(NotifierError, match="(?i)time"):
            notifier.send(ALERT, Deadline.after(0.5))
        assert time.monotonic() - started < 5
    with pytest.raises(NotifierError, match="no time left"):
        notifiers[0].send(ALERT, Deadline.after(0))

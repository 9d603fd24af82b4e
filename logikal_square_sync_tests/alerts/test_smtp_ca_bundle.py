"""SMTP_CA_BUNDLE: the relay's private CA is trusted for the relay only, SSL_CERT_FILE plays no part.

Against a real STARTTLS relay (aiosmtpd) whose certificate no public CA signed.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from logikal_square_sync.alerts.notifiers import Alert, EmailNotifier, NotifierError
from logikal_square_sync.alerts.resource import alerts_resource_from_env
from logikal_square_sync_tests.alerts.mail import SMTP_PASSWORD, SMTP_USER, Certificate, Mailbox
from logikal_square_sync_tests.tls import self_signed

ALERT = Alert(title="Run failed: square/orders", body="boom")


@pytest.fixture
def relay_env(smtp_starttls: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ALERT_EMAIL_TO": "ops@example.com",
        "SMTP_HOST": smtp_starttls.host,
        "SMTP_PORT": str(smtp_starttls.port),
        "SMTP_USERNAME": SMTP_USER,
        "SMTP_PASSWORD": SMTP_PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)


def _send_from_env() -> None:
    with dg.build_resources({"alerts": alerts_resource_from_env()}) as resources:
        [email] = resources.alerts.notifiers()
        email.send(ALERT)


def test_the_relay_is_trusted_through_smtp_ca_bundle_beside_an_unrelated_ssl_cert_file(
    relay_env: None,
    smtp_starttls: Mailbox,
    certificate: Certificate,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed(tmp_path, "unrelated").cert))
    monkeypatch.setenv("SMTP_CA_BUNDLE", str(certificate.cert))
    _send_from_env()
    assert smtp_starttls.logins == [SMTP_USER]
    assert smtp_starttls.encrypted == [True]
    assert [m["Subject"] for m in smtp_starttls.messages] == ["[ERROR] Run failed: square/orders"]


def test_without_smtp_ca_bundle_the_private_relay_is_refused_naming_the_certificate(
    relay_env: None, smtp_starttls: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(NotifierError, match=r"SMTP 127\.0\.0\.1:\d+: SSLCertVerificationError.*self-signed"):
        _send_from_env()
    assert smtp_starttls.logins == [] and smtp_starttls.envelopes == []


def test_an_unreadable_smtp_ca_bundle_names_the_variable(smtp_starttls: Mailbox, tmp_path: Path) -> None:
    missing = tmp_path / "relay-ca.pem"
    notifier = EmailNotifier(
        host=smtp_starttls.host,
        port=smtp_starttls.port,
        sender="dagster@example.com",
        recipients=("ops@example.com",),
        ca_bundle=str(missing),
    )
    with pytest.raises(NotifierError) as error:
        notifier.send(ALERT)
    assert str(error.value) == (
        f"SMTP_CA_BUNDLE={missing}: cannot load it as a PEM file of CA certificates "
        "(No such file or directory)"
    )
    assert isinstance(error.value.__cause__, FileNotFoundError)

"""Alerts configured for both channels, as most alert tests want them."""

from __future__ import annotations

from logikal_square_sync.alerts.resource import AlertsResource


def slack_and_mail(
    webhook_url: str,
    relay_host: str,
    relay_port: int,
    *,
    smtp_username: str | None = None,
    smtp_password: str | None = None,
    smtp_ca_bundle: str | None = None,
) -> AlertsResource:
    """Alerts to the Slack webhook and by mail to ops@example.com through the relay at host:port."""
    return AlertsResource(
        slack_webhook_url=webhook_url,
        email_to="ops@example.com",
        smtp_host=relay_host,
        smtp_port=relay_port,
        smtp_username=smtp_username,
        smtp_password=smtp_password,
        smtp_ca_bundle=smtp_ca_bundle,
    )

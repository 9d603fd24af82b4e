"""The Dagster resource that knows where alerts go (Slack, e-mail) and how to link back to the UI."""

import os
from typing import Any

import dagster as dg
from pydantic import Field

from logikal_square_sync.alerts.heartbeat import HEARTBEAT_ENV
from logikal_square_sync.alerts.notifiers import EmailNotifier, Notifier, SlackNotifier

DEFAULT_SMTP_PORT = 587

# Resource field -> environment variable. The secret ones are never given as plain values.
ENV_VARS = {
    "slack_webhook_url": "SLACK_WEBHOOK_URL",
    "email_to": "ALERT_EMAIL_TO",
    "email_from": "ALERT_EMAIL_FROM",
    "smtp_host": "SMTP_HOST",
    "smtp_port": "SMTP_PORT",
    "smtp_username": "SMTP_USERNAME",
    "smtp_password": "SMTP_PASSWORD",
    "smtp_ca_bundle": "SMTP_CA_BUNDLE",
    "webserver_url": "DAGSTER_WEBSERVER_URL",
    "runbook_url": "LSS_RUNBOOK_URL",
    "heartbeat_url": HEARTBEAT_ENV,
}

ALERTS_OFF = (
    "Alerts are off: set SLACK_WEBHOOK_URL, or ALERT_EMAIL_TO and SMTP_HOST, "
    "in the environment of the code location."
)


class AlertsResource(dg.ConfigurableResource):
    """Where failure and staleness alerts go: a Slack incoming webhook and/or e-mail over SMTP.

    Alerting is off when neither channel is configured. Secrets (the webhook
    URL, SMTP username and password) are set only through `dg.EnvVar`.
    """

    slack_webhook_url: str | None = Field(
        default=None, description="SLACK_WEBHOOK_URL: Slack incoming-webhook URL (a secret)"
    )
    email_to: str | None = Field(default=None, description="ALERT_EMAIL_TO: comma-separated recipients")
    email_from: str | None = Field(
        default=None, description="ALERT_EMAIL_FROM: sender address (default: SMTP_USERNAME)"
    )
    smtp_host: str | None = Field(default=None, description="SMTP_HOST: the SMTP relay")
    smtp_port: int = Field(
        default=DEFAULT_SMTP_PORT, description="SMTP_PORT: 587 (STARTTLS) or 465 (TLS) or 25"
    )
    smtp_username: str | None = Field(
        default=None, description="SMTP_USERNAME: log in to the relay (only over TLS)"
    )
    smtp_password: str | None = Field(default=None, description="SMTP_PASSWORD (a secret)")
    smtp_ca_bundle: str | None = Field(
        default=None,
        description="SMTP_CA_BUNDLE: PEM file of the CAs to trust for the SMTP relay only (a private CA)",
    )
    webserver_url: str | None = Field(
        default=None, description="DAGSTER_WEBSERVER_URL: base URL of the Dagster UI, for links in alerts"
    )
    runbook_url: str | None = Field(
        default=None,
        description=(
            "LSS_RUNBOOK_URL: where docs/runbook.md is published (e.g. its page in your Git host); "
            "alerts link its sections. Unset: alerts name the file's path in the repository."
        ),
    )
    heartbeat_url: str | None = Field(
        default=None,
        description=(
            f"{HEARTBEAT_ENV}: a dead-man's-switch URL (healthchecks.io, Uptime Kuma push, ...) the alert "
            "sensors GET on every tick; its monitor alerts when the pings stop (a secret). Unset: off."
        ),
    )
    slack_timeout_seconds: float = 10.0
    smtp_timeout_seconds: float = 30.0

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_webhook_url)

    @property
    def email_configured(self) -> bool:
        return bool(self.email_to and self.smtp_host)

    @property
    def enabled(self) -> bool:
        return self.slack_configured or self.email_configured

    def off_reason(self) -> str | None:
        """Why alerting is off (for a sensor's SkipReason), or None when at least one channel works."""
        if self.enabled:
            return None
        if self.email_to or self.smtp_host:
            missing = "SMTP_HOST" if self.email_to else "ALERT_EMAIL_TO"
            return f"{ALERTS_OFF} E-mail needs both; {missing} is not set."
        return ALERTS_OFF

    def notifiers(self) -> list[Notifier]:
        notifiers: list[Notifier] = []
        if self.slack_webhook_url:
            notifiers.append(
                SlackNotifier(self.slack_webhook_url, timeout_seconds=self.slack_timeout_seconds)
            )
        if self.email_to and self.smtp_host:
            notifiers.append(
                EmailNotifier(
                    host=self.smtp_host,
                    port=self.smtp_port,
                    sender=self.email_from or self.smtp_username or "dagster-alerts@localhost",
                    recipients=tuple(a.strip() for a in self.email_to.split(",") if a.strip()),
                    username=self.smtp_username or None,
                    password=self.smtp_password or None,
                    timeout_seconds=self.smtp_timeout_seconds,
                    ca_bundle=self.smtp_ca_bundle or None,
                )
            )
        return notifiers

    def link(self, path: str) -> str | None:
        """A link into the Dagster UI, e.g. `link("/runs/<id>")`; None without DAGSTER_WEBSERVER_URL."""
        if not self.webserver_url:
            return None
        return f"{self.webserver_url.rstrip('/')}/{path.lstrip('/')}"


def alerts_resource_from_env() -> AlertsResource:
    """An `AlertsResource` with `dg.EnvVar(NAME)` for each alerting variable set in the environment.

    Unset variables stay unset, so an environment without any of them has
    alerting off (the sensors skip and say so) instead of failing to load.
    """
    values: dict[str, Any] = {}
    for field_name, env_name in ENV_VARS.items():
        if os.environ.get(env_name):
            values[field_name] = dg.EnvVar.int(env_name) if field_name == "smtp_port" else dg.EnvVar(env_name)
    return AlertsResource(**values)

"""`alert_on_run_failure` on real failed runs in a real Dagster instance."""

import logging

import dagster as dg
import pytest

from logikal_square_sync.alerts.notifiers import AlertDeliveryError
from logikal_square_sync.alerts.resource import AlertsResource, alerts_resource_from_env
from logikal_square_sync.alerts.sensors import alert_on_run_failure
from logikal_square_sync_tests.alerts.conftest import SMTP_PASSWORD

WEBSERVER = "http://dagster.example:3000"
PROJECT = "6f1c2a7e-0d4b-4b8e-9a51-3c2d1e0f9a88"


@dg.op
def fetch_orders() -> None:
    raise RuntimeError("Square SearchOrders answered 500 six times\nlast body: internal error")


@dg.op
def write_orders() -> None:
    pass


@dg.job
def nightly_orders() -> None:
    fetch_orders()
    write_orders()


def _failed_run(instance: dg.DagsterInstance, **tags: str) -> dg.ExecuteInProcessResult:
    result = nightly_orders.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    assert not result.success
    return result


def _context(instance, result, alerts: AlertsResource) -> dg.RunFailureSensorContext:
    return dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"alerts": alerts},
    ).for_run_failure()


def test_failed_run_alerts_with_job_run_step_error_partition_and_link(instance, slack) -> None:
    result = _failed_run(instance, **{"dagster/partition": PROJECT})
    alerts = AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER)

    assert alert_on_run_failure(_context(instance, result, alerts)) is None

    assert len(slack.texts) == 1
    text = slack.texts[0]
    run_id = result.run_id
    assert "nightly_orders" in text
    assert f"Run: {run_id}" in text
    assert "Failed steps: fetch_orders" in text
    assert "RuntimeError: Square SearchOrders answered 500 six times" in text
    assert "last body: internal error" in text
    assert "DagsterExecutionStepExecutionError" not in text  # Dagster's wrapper adds nothing
    assert f"Partition: {PROJECT}" in text
    assert f"<{WEBSERVER}/runs/{run_id}|Open in Dagster>" in text


PROJECTS = dg.DynamicPartitionsDefinition(name="test_projects")


@dg.asset(key=["logikal", "phases"], partitions_def=PROJECTS)
def phases() -> None:
    raise dg.Failure(description="Elevation E-12 is locked by another LogiKal user")


def test_failed_asset_run_names_the_asset_and_the_project(instance, slack) -> None:
    instance.add_dynamic_partitions(PROJECTS.name, [PROJECT])
    result = dg.materialize([phases], instance=instance, partition_key=PROJECT, raise_on_error=False)
    alerts = AlertsResource(slack_webhook_url=slack.webhook_url)

    alert_on_run_failure(_context(instance, result, alerts))

    [text] = slack.texts
    assert f"*Run failed: logikal/phases [{PROJECT}]*" in text  # not the implicit job's name
    assert "Assets: logikal/phases" in text
    assert f"Partition: {PROJECT} (LogiKal project GUID)" in text
    assert "Elevation E-12 is locked by another LogiKal user" in text
    assert "Open in Dagster" not in text  # no DAGSTER_WEBSERVER_URL, no link


def test_sensor_picks_the_failure_from_the_event_log_on_its_next_tick(instance, slack) -> None:
    """The path the daemon takes: the first tick sets the cursor, the next one finds the new failure."""
    alerts = AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER)
    first = alert_on_run_failure.evaluate_tick(
        dg.build_sensor_context(instance=instance, resources={"alerts": alerts})
    )
    result = _failed_run(instance)

    second = alert_on_run_failure.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"alerts": alerts})
    )

    assert [reaction.dagster_run.run_id for reaction in second.dagster_run_reactions] == [result.run_id]
    assert all(reaction.error is None for reaction in second.dagster_run_reactions)
    assert len(slack.texts) == 1 and result.run_id in slack.texts[0]


def test_alerts_read_from_the_environment(instance, slack, smtp, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.com")
    monkeypatch.setenv("ALERT_EMAIL_FROM", "dagster@example.com")
    monkeypatch.setenv("SMTP_HOST", smtp.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", WEBSERVER)
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    resource = alerts_resource_from_env()
    assert isinstance(resource.slack_webhook_url, dg.EnvVar)  # resolved by Dagster, not at import
    result = _failed_run(instance)

    alert_on_run_failure(_context(instance, result, resource))

    assert len(slack.texts) == 1
    [message] = smtp.messages
    assert message["Subject"] == "[ERROR] Run failed: nightly_orders"
    assert smtp.envelopes[0][1] == ["ops@example.com"]
    body = message.get_content()
    assert f"Run: {result.run_id}" in body and "Failed steps: fetch_orders" in body
    assert f"Open in Dagster: {WEBSERVER}/runs/{result.run_id}" in body


def test_one_failing_channel_still_alerts_through_the_other(instance, slack, smtp, capfd) -> None:
    alerts = AlertsResource(
        slack_webhook_url=slack.broken_webhook_url,
        email_to="ops@example.com",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
    )
    result = _failed_run(instance)

    alert_on_run_failure(_context(instance, result, alerts))

    assert len(smtp.messages) == 1
    # The sensor's log (Dagster's logger writes to stderr) says which channel failed.
    assert "not sent via slack: Slack webhook answered HTTP 404" in capfd.readouterr().err


def test_no_channel_working_fails_the_tick(instance, slack) -> None:
    alerts = AlertsResource(slack_webhook_url=slack.broken_webhook_url)
    result = _failed_run(instance)

    with pytest.raises(AlertDeliveryError, match="not delivered: slack failed"):
        alert_on_run_failure(_context(instance, result, alerts))


def test_alerts_off_skips_and_sends_nothing(instance, slack, smtp) -> None:
    result = _failed_run(instance)

    skipped = alert_on_run_failure(_context(instance, result, AlertsResource()))

    assert isinstance(skipped, dg.SkipReason)
    assert "Alerts are off" in skipped.skip_message and "SLACK_WEBHOOK_URL" in skipped.skip_message
    assert slack.posts == [] and smtp.envelopes == []


def test_half_configured_email_says_what_is_missing(instance) -> None:
    skipped = alert_on_run_failure(
        _context(instance, _failed_run(instance), AlertsResource(email_to="o@x.com"))
    )
    assert "SMTP_HOST is not set" in skipped.skip_message


def test_secrets_never_reach_logs_or_alert_text(instance, slack, smtp_starttls, certificate, caplog, capfd):
    """The webhook URL is a credential: not in httpx's request log, Dagster's log, or the message."""
    caplog.set_level(logging.DEBUG)
    alerts = AlertsResource(
        slack_webhook_url=slack.webhook_url,
        email_to="ops@example.com",
        smtp_host=smtp_starttls.host,
        smtp_port=smtp_starttls.port,
        smtp_username="alerts@example.com",
        smtp_password=SMTP_PASSWORD,
    )
    result = _failed_run(instance)

    # The relay's certificate is self-signed: trust it the way an operator would, via SSL_CERT_FILE.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(certificate.cert))
        alert_on_run_failure(_context(instance, result, alerts))

    assert len(slack.texts) == 1 and smtp_starttls.logins == ["alerts@example.com"]
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "HTTP Request: POST" in logs and "<redacted>" in logs  # httpx did log the request, masked
    for secret in ("webhookSecretToken4711", SMTP_PASSWORD):
        assert secret not in logs
        assert secret not in slack.texts[0]
        assert all(secret not in m.get_content() for m in smtp_starttls.messages)

"""`alert_on_run_failure` on real runs in a real Dagster instance: one alert per failure episode."""

import logging
from collections.abc import Callable

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.alerts.hints import hint_for
from logikal_square_sync.alerts.resource import AlertsResource, alerts_resource_from_env
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync.warehouse.tables import logikal_projects
from logikal_square_sync_tests.alerts.channels import slack_and_mail
from logikal_square_sync_tests.alerts.mail import SMTP_PASSWORD
from logikal_square_sync_tests.alerts.ticker import Ticker
from logikal_square_sync_tests.clock import ANCHOR

WEBSERVER = "http://dagster.example:3000"
PROJECT = "6f1c2a7e-0d4b-4b8e-9a51-3c2d1e0f9a88"
OTHER_PROJECT = "7a2d3b8f-1e5c-4c9f-8b62-4d3e2f1a0b99"


@dg.op
def fetch_orders() -> None:
    raise RuntimeError(
        "Square SearchOrders still failing after 6 attempts (last: ConnectError)\nlast body: -"
    )


@dg.op
def write_orders() -> None:
    pass


@dg.job
def nightly_orders() -> None:
    fetch_orders()
    write_orders()


class Outcome(dg.ConfigurableResource):
    fail: bool = True


PROJECTS_NAME = "test_projects"
PROJECTS = dg.DynamicPartitionsDefinition(name=PROJECTS_NAME)


@dg.asset(key=["logikal", "phases"], partitions_def=PROJECTS)
def phases(outcome: Outcome) -> None:
    if outcome.fail:
        raise dg.Failure(
            description="POST /elevations/select refused (409): the elevation 'P12' is in use by another user"
        )


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    """A warehouse that knows the project's name, as the real one does after logikal/projects."""
    resource = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    with resource.engine.begin() as conn:
        conn.execute(
            sa.insert(logikal_projects),
            [
                {
                    "id": PROJECT,
                    "directory_path": "Demo",
                    "name": "DOS22309",
                    "is_deleted": False,
                    "synced_at": ANCHOR,
                }
            ],
        )
    return resource


@pytest.fixture
def ticking(instance, warehouse) -> Callable[[AlertsResource], Ticker]:
    def start(alerts: AlertsResource) -> Ticker:
        ticker = Ticker(instance, alerts, warehouse)
        assert "Watching runs from now on" in ticker.tick()  # the first tick only sets the cursor
        return ticker

    return start


def _failed_job(instance: dg.DagsterInstance, **tags: str) -> dg.ExecuteInProcessResult:
    result = nightly_orders.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    assert not result.success
    return result


def _project_run(instance: dg.DagsterInstance, project: str, *, fail: bool, **tags: str) -> str:
    instance.add_dynamic_partitions(PROJECTS_NAME, [project])
    result = dg.materialize(
        [phases],
        instance=instance,
        partition_key=project,
        resources={"outcome": Outcome(fail=fail)},
        raise_on_error=False,
        tags=tags,
    )
    assert result.success is not fail
    return result.run_id


def test_a_failed_run_alerts_with_what_a_person_needs(instance, slack, ticking) -> None:
    ticker = ticking(AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER))
    result = _failed_job(instance, **{"dagster/schedule_name": "square_daily_sync"})
    ticker.tick()

    [text] = slack.texts
    run_id = result.run_id
    assert "*Run failed: nightly_orders*" in text
    assert f"Run: {run_id}" in text and "Started by: schedule square_daily_sync" in text
    assert "Failed steps: fetch_orders" in text
    assert "RuntimeError: Square SearchOrders still failing after 6 attempts" in text
    assert "DagsterExecutionStepExecutionError" not in text  # Dagster's wrapper adds nothing
    assert "What to check (network): The API did not answer" in text
    assert "Runbook: docs/runbook.md#network" in text
    assert f"<{WEBSERVER}/runs/{run_id}|Open in Dagster>" in text


def test_one_alert_per_failure_episode_and_one_on_recovery(instance, slack, ticking) -> None:
    ticker = ticking(AlertsResource(slack_webhook_url=slack.webhook_url))
    first = _project_run(
        instance, PROJECT, fail=True, **{"dagster/sensor_name": "logikal_project_sync_sensor"}
    )
    ticker.tick()
    [text] = slack.texts
    assert "*Run failed: logikal/phases [DOS22309]*" in text  # the project by name, not the implicit job
    assert f"LogiKal project: DOS22309 (GUID {PROJECT})" in text
    assert "Started by: sensor logikal_project_sync_sensor" in text
    assert "What to check (locked in LogiKal)" in text and "in use by another user" in text
    assert first in text

    for _ in range(3):  # the same project keeps failing: counted, not alerted
        _project_run(instance, PROJECT, fail=True)
    assert "Failing now: logikal/phases[" in ticker.tick()
    assert len(slack.texts) == 1

    _project_run(instance, OTHER_PROJECT, fail=True)  # another project: an episode of its own
    ticker.tick()
    assert len(slack.texts) == 2 and f"[{OTHER_PROJECT}]" in slack.texts[1]  # no name known: the GUID

    recovered = _project_run(instance, PROJECT, fail=False)
    ticker.tick()
    assert len(slack.texts) == 3
    assert slack.texts[2].startswith(":white_check_mark: *Recovered: logikal/phases [DOS22309]*")
    assert f"Run {recovered} succeeded" in slack.texts[2] and "after 4 failed run(s)" in slack.texts[2]

    _project_run(instance, PROJECT, fail=False)  # fine and still fine: nothing to say
    ticker.tick()
    assert len(slack.texts) == 3


def test_history_before_the_first_tick_is_not_alerted(instance, slack, warehouse) -> None:
    _failed_job(instance)
    ticker = Ticker(instance, AlertsResource(slack_webhook_url=slack.webhook_url), warehouse)
    ticker.tick()
    ticker.tick()
    assert slack.texts == []


def test_an_undelivered_alert_is_sent_on_the_next_tick_and_only_once(instance, slack, ticking) -> None:
    broken = ticking(AlertsResource(slack_webhook_url=slack.broken_webhook_url))
    result = _failed_job(instance)
    message = broken.tick()
    assert "Waiting in the outbox: 1 for slack. slack failed: Slack webhook answered HTTP 404" in message
    assert slack.texts == []
    fixed = Ticker(broken.instance, AlertsResource(slack_webhook_url=slack.webhook_url), broken.warehouse)
    fixed.cursor = broken.cursor  # the tick returned, so its cursor (with the outbox) is kept
    fixed.tick()
    fixed.tick()
    assert len(slack.texts) == 1 and result.run_id in slack.texts[0]


def test_one_failing_channel_still_alerts_through_the_other(instance, slack, smtp, capfd, ticking) -> None:
    ticker = ticking(slack_and_mail(slack.broken_webhook_url, smtp.host, smtp.port))
    _failed_job(instance)
    ticker.tick()
    assert len(smtp.messages) == 1
    assert "not sent via slack: Slack webhook answered HTTP 404" in capfd.readouterr().err


def test_alerts_off_skips_and_says_what_is_missing(instance, warehouse) -> None:
    for alerts, missing in (
        (AlertsResource(), "SLACK_WEBHOOK_URL"),
        (AlertsResource(email_to="o@x.com"), "SMTP_HOST"),
    ):
        message = Ticker(instance, alerts, warehouse).tick()
        assert "Alerts are off" in message and missing in message


def test_alerts_read_from_the_environment(instance, slack, smtp, monkeypatch, warehouse) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.com")
    monkeypatch.setenv("ALERT_EMAIL_FROM", "dagster@example.com")
    monkeypatch.setenv("SMTP_HOST", smtp.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", WEBSERVER)
    monkeypatch.setenv("LSS_RUNBOOK_URL", "https://git.example.com/lss/blob/main/docs/runbook.md")
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    resource = alerts_resource_from_env()
    assert isinstance(resource.slack_webhook_url, dg.EnvVar)  # resolved by Dagster, not at import
    ticker = Ticker(instance, resource, warehouse)
    ticker.tick()
    result = _failed_job(instance)
    ticker.tick()

    assert len(slack.texts) == 1
    [message] = smtp.messages
    assert message["Subject"] == "[ERROR] Run failed: nightly_orders"
    body = message.get_content()
    assert f"Run: {result.run_id}" in body and "Failed steps: fetch_orders" in body
    assert "Runbook: https://git.example.com/lss/blob/main/docs/runbook.md#network" in body
    assert f"Open in Dagster: {WEBSERVER}/runs/{result.run_id}" in body


def test_secrets_never_reach_logs_or_alert_text(
    instance, slack, smtp_starttls, certificate, caplog, capfd, ticking
) -> None:
    """The webhook URL is a credential: not in httpx's request log, Dagster's log, or the message."""
    caplog.set_level(logging.DEBUG)
    ticker = ticking(
        slack_and_mail(
            slack.webhook_url,
            smtp_starttls.host,
            smtp_starttls.port,
            smtp_username="alerts@example.com",
            smtp_password=SMTP_PASSWORD,
            # The relay's certificate is self-signed: trusted the way an operator would, for the relay only.
            smtp_ca_bundle=str(certificate.cert),
        )
    )
    _failed_job(instance)
    ticker.tick()

    assert len(slack.texts) == 1 and smtp_starttls.logins == ["alerts@example.com"]
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "HTTP Request: POST" in logs and "<redacted>" in logs  # httpx did log the request, masked
    for secret in ("webhookSecretToken4711", SMTP_PASSWORD):
        assert secret not in logs
        assert secret not in slack.texts[0]
        assert all(secret not in m.get_content() for m in smtp_starttls.messages)


@pytest.mark.parametrize(
    ("error", "source", "kind", "names"),
    [
        (
            "InsecureBaseUrlError: LOGIKAL_BASE_URL is plain http (http://logikal.internal): every LogiKal "
            "login would send LOGIKAL_PASSWORD in clear. Use an https:// URL, or set LOGIKAL_ALLOW_HTTP=true",
            "logikal",
            "configuration",
            "LOGIKAL_ALLOW_HTTP",
        ),
        (
            "Square ListLocations failed with HTTP 401: UNAUTHORIZED",
            "square",
            "credentials",
            "SQUARE_ACCESS_TOKEN",
        ),
        (
            "LogiKal refused the login of user 'erp': Authentication failed",
            "logikal",
            "credentials",
            "LOGIKAL_",
        ),
        (
            "POST /elevations/select refused (409) with the session in phase state",
            "logikal",
            "locked in LogiKal",
            "",
        ),
        (
            "GET /projects still failing after 4 attempts (last: ConnectTimeout)",
            "logikal",
            "network",
            "LOGIKAL_BASE_URL",
        ),
        (
            "malformed Square order 'O1': field 'updated_at' is not an RFC 3339 timestamp",
            "square",
            "bad record",
            "",
        ),
        ("(psycopg2.OperationalError) connection to server failed", None, "warehouse", "WAREHOUSE_URL"),
        (
            "Run timed out due to taking longer than 3600 seconds (dagster/max_runtime)",
            None,
            "run worker",
            "",
        ),
        ("refusing to mark 5 of 12 projects deleted (42 %, limit 20 %)", "logikal", "deletion limit", ""),
        (
            "WarehouseLockTimeout: the warehouse (SQLite file /data/warehouse.sqlite) stayed busy for 60 s "
            "(policies.yaml lock_timeouts.warehouse_seconds) ... database is locked",
            "logikal",
            "lock timeout",
            "lock_timeouts",
        ),
        (
            "GET /v2/locations failed: TLS: the certificate of connect.squareup.com "
            "is not trusted (CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate)",
            "square",
            "TLS certificate",
            "SMTP_CA_BUNDLE",
        ),
        (
            "POST /auth still failing after 4 attempts (last: DNS: the host name "
            "of logikal.lss-test.invalid cannot be resolved (Name or service not known))",
            "logikal",
            "network",
            "LOGIKAL_BASE_URL",
        ),
        ("KeyError: 'something else'", None, "other", ""),
    ],
)
def test_each_kind_of_error_says_what_to_check(error, source, kind, names) -> None:
    hint = hint_for(error, source)
    assert hint.kind.startswith(kind), hint
    assert names in hint.advice
    assert hint.runbook().startswith("docs/runbook.md#")

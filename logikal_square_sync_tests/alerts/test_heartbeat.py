"""LSS_HEARTBEAT_URL: every tick of each alert sensor pings the monitor; a failing monitor fails no tick."""

import logging
import time

import dagster as dg
import pytest

from logikal_square_sync.alerts.resource import AlertsResource, alerts_resource_from_env
from logikal_square_sync.alerts.run_sensor import alert_on_run_failure
from logikal_square_sync.alerts.stale_sensor import alert_on_stale_assets
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_sandbox.server import free_port
from logikal_square_sync_tests.alerts.heartbeat_monitor import HEARTBEAT_PATH

DEFINITIONS = dg.Definitions(sensors=[alert_on_run_failure, alert_on_stale_assets])


def _tick(sensor: dg.SensorDefinition, instance, alerts: AlertsResource, tmp_path, cursor=None) -> str | None:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "alerts": alerts,
            "warehouse": WarehouseResource(url=f"sqlite:///{tmp_path / 'w.sqlite'}"),
        },
        definitions=DEFINITIONS,
    )
    return sensor.evaluate_tick(context).cursor


def test_each_tick_of_each_alert_sensor_pings_once(instance, slack, monitor, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
    monkeypatch.setenv("LSS_HEARTBEAT_URL", monitor.ping_url)
    alerts = alerts_resource_from_env()
    assert isinstance(alerts.heartbeat_url, dg.EnvVar)  # a secret: only through EnvVar
    run_cursor = stale_cursor = None
    for _ in range(3):
        run_cursor = _tick(alert_on_run_failure, instance, alerts, tmp_path, run_cursor)
    for _ in range(2):
        stale_cursor = _tick(alert_on_stale_assets, instance, alerts, tmp_path, stale_cursor)
    assert (
        monitor.pings
        == ["logikal_square_sync alert_on_run_failure"] * 3
        + ["logikal_square_sync alert_on_stale_assets"] * 2
    )


def test_the_heartbeat_goes_on_while_alerts_are_off(instance, monitor, tmp_path) -> None:
    """The daemon lives although no channel is set up: the monitor hears it."""
    alerts = AlertsResource(heartbeat_url=monitor.ping_url)
    _tick(alert_on_run_failure, instance, alerts, tmp_path)
    _tick(alert_on_stale_assets, instance, alerts, tmp_path)
    assert len(monitor.pings) == 2


def test_unset_means_no_heartbeat(instance, slack, monitor, tmp_path) -> None:
    _tick(alert_on_run_failure, instance, AlertsResource(slack_webhook_url=slack.webhook_url), tmp_path)
    assert monitor.pings == []


@pytest.mark.parametrize("endpoint", ["answers 500", "never answers", "refuses"])
def test_a_failing_monitor_never_fails_the_tick(
    instance, slack, monitor, silent_port, alert_policies, caplog, capfd, tmp_path, endpoint
) -> None:
    alert_policies(heartbeat_timeout_seconds=0.5)
    caplog.set_level(logging.DEBUG)
    host, port = monitor.url.removeprefix("http://").split(":")
    if endpoint == "answers 500":
        url = monitor.broken_url + "/hb-secret"
    elif endpoint == "never answers":
        silent = silent_port(host, int(port))
        url = f"http://{silent.host}:{silent.port}{HEARTBEAT_PATH}"
    else:
        url = f"http://127.0.0.1:{free_port()}{HEARTBEAT_PATH}"
    alerts = AlertsResource(slack_webhook_url=slack.webhook_url, heartbeat_url=url)
    started = time.monotonic()
    cursor = _tick(alert_on_run_failure, instance, alerts, tmp_path)
    assert time.monotonic() - started < 5  # the heartbeat's own timeout (0.5 s), not httpx's default
    assert cursor is not None  # the tick returned and its cursor is kept
    logs = caplog.text + capfd.readouterr().err
    assert "Heartbeat to LSS_HEARTBEAT_URL failed" in logs
    assert "hb-secret" not in logs  # the URL lets anyone report "alive": never logged

"""`alert_on_stale_assets` across ticks, on real materializations and check results in a real instance."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from logikal_square_sync.alerts.freshness import FreshnessWindows
from logikal_square_sync.alerts.notifiers import AlertDeliveryError
from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.alerts.sensors import alert_on_stale_assets, build_stale_assets_sensor
from logikal_square_sync_tests.clock import ANCHOR, awkward_moments

WEBSERVER = "http://dagster.example:3000"
ORDERS = dg.AssetKey(["square", "orders"])
LOCATIONS = dg.AssetKey(["square", "locations"])
WINDOWS = FreshnessWindows(warn=timedelta(minutes=10), fail=timedelta(minutes=20))


@dg.asset(key=ORDERS)
def orders() -> None:
    pass


class Clock:
    """The sensor's notion of now, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = ANCHOR

    def __call__(self) -> datetime:
        return self.now


class Ticker:
    """Evaluates a sensor tick after tick the way the daemon does, carrying the cursor."""

    def __init__(self, sensor: dg.SensorDefinition, instance: dg.DagsterInstance, alerts: AlertsResource):
        self.sensor, self.instance, self.alerts = sensor, instance, alerts
        self.cursor: str | None = None

    def tick(self, definitions: dg.Definitions | None = None) -> str:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"alerts": self.alerts},
            definitions=definitions,
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data.skip_message or ""


def _materialized_at(instance: dg.DagsterInstance, key: dg.AssetKey) -> datetime:
    event = instance.get_latest_materialization_event(key)
    assert event is not None
    return datetime.fromtimestamp(event.timestamp, UTC)


@pytest.mark.parametrize("moment", awkward_moments())
def test_one_alert_per_transition_and_a_recovery(instance, slack, pinned_clock, moment) -> None:
    # At midnight, month and year ends and across daylight saving: windows are durations, never dates.
    pinned_clock.move_to(moment)
    clock = Clock()
    sensor = build_stale_assets_sensor({ORDERS: WINDOWS}, check_keys=[], clock=clock)
    ticker = Ticker(
        sensor, instance, AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER)
    )
    dg.materialize([orders], instance=instance)
    t0 = _materialized_at(instance, ORDERS)

    clock.now = t0 + timedelta(minutes=1)
    assert "No change, nothing sent" in ticker.tick()
    assert slack.texts == []

    clock.now = t0 + timedelta(minutes=11)
    ticker.tick()
    assert len(slack.texts) == 1
    assert "Getting stale (WARN): square/orders" in slack.texts[0]
    assert "11 min ago; warn after 10 min, fail after 20 min" in slack.texts[0]
    assert f"<{WEBSERVER}/assets/square/orders|Open in Dagster>" in slack.texts[0]

    clock.now = t0 + timedelta(minutes=15)
    message = ticker.tick()
    assert len(slack.texts) == 1, "still WARN: no second alert"
    assert "stale: square/orders" in message

    clock.now = t0 + timedelta(minutes=21)
    ticker.tick()
    assert len(slack.texts) == 2
    assert "Stale (FAIL): square/orders" in slack.texts[1] and "(was WARN)" in slack.texts[1]

    clock.now = t0 + timedelta(minutes=90)
    ticker.tick()
    assert len(slack.texts) == 2, "still FAIL: no repeat"

    dg.materialize([orders], instance=instance)
    clock.now = _materialized_at(instance, ORDERS) + timedelta(minutes=1)
    ticker.tick()
    assert len(slack.texts) == 3
    assert "Fresh again: square/orders" in slack.texts[2] and "(was FAIL)" in slack.texts[2]
    assert slack.texts[2].startswith(":white_check_mark:")

    ticker.tick()
    assert len(slack.texts) == 3


def test_never_materialized_alerts_once(instance, slack) -> None:
    sensor = build_stale_assets_sensor({LOCATIONS: WINDOWS}, check_keys=[], clock=Clock())
    ticker = Ticker(sensor, instance, AlertsResource(slack_webhook_url=slack.webhook_url))

    ticker.tick()
    ticker.tick()

    assert len(slack.texts) == 1
    assert "Never materialized: square/locations" in slack.texts[0]
    assert "expected within 20 min" in slack.texts[0]


def test_several_changes_on_one_tick_make_one_message(instance, slack, smtp) -> None:
    alerts = AlertsResource(
        slack_webhook_url=slack.webhook_url,
        email_to="ops@example.com",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
    )
    sensor = build_stale_assets_sensor({ORDERS: WINDOWS, LOCATIONS: WINDOWS}, check_keys=[], clock=Clock())

    Ticker(sensor, instance, alerts).tick()

    assert len(slack.texts) == 1 and "Freshness changed for 2 assets" in slack.texts[0]
    [message] = smtp.messages
    assert message["Subject"] == "[ERROR] Freshness changed for 2 assets: square/orders, square/locations"
    body = message.get_content()
    assert "square/orders: never materialized" in body and "square/locations: never materialized" in body


class CheckOutcome(dg.ConfigurableResource):
    missing: list[str] = []


@dg.asset_check(asset=orders, name="orders_complete", blocking=False)
def orders_complete(outcome: CheckOutcome) -> dg.AssetCheckResult:
    """Like the real check: fails with ERROR severity and names the missing orders."""
    return dg.AssetCheckResult(
        passed=not outcome.missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(outcome.missing)} orders missing: {', '.join(outcome.missing)}"
        if outcome.missing
        else "all orders present",
    )


def test_failed_error_check_alerts_once_and_recovers(instance, slack) -> None:
    sensor = build_stale_assets_sensor({}, clock=Clock())  # every check of the code location
    definitions = dg.Definitions(
        assets=[orders],
        asset_checks=[orders_complete],
        sensors=[sensor],
        resources={"outcome": CheckOutcome()},
    )
    ticker = Ticker(
        sensor, instance, AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER)
    )

    def run_check(*missing: str) -> None:
        dg.materialize(
            [orders, orders_complete],
            instance=instance,
            resources={"outcome": CheckOutcome(missing=list(missing))},
        )

    run_check()
    ticker.tick(definitions)
    assert slack.texts == []

    run_check("ord_1", "ord_2")
    ticker.tick(definitions)
    ticker.tick(definitions)
    assert len(slack.texts) == 1
    assert "Check failed: square/orders:orders_complete" in slack.texts[0]
    assert "2 orders missing: ord_1, ord_2" in slack.texts[0]
    assert f"{WEBSERVER}/assets/square/orders?view=checks" in slack.texts[0]

    run_check("ord_1", "ord_2", "ord_3")
    assert "failing checks: square/orders:orders_complete" in ticker.tick(definitions)
    assert len(slack.texts) == 1, "still failing: no repeat"

    run_check()
    ticker.tick(definitions)
    assert len(slack.texts) == 2
    assert "Check passing again: square/orders:orders_complete" in slack.texts[1]


def test_alerts_off_skips_and_keeps_no_state(instance, slack) -> None:
    ticker = Ticker(
        build_stale_assets_sensor({LOCATIONS: WINDOWS}, check_keys=[]), instance, AlertsResource()
    )

    assert ticker.tick().startswith("Alerts are off: set SLACK_WEBHOOK_URL")
    assert ticker.cursor is None
    assert slack.posts == []


def test_undelivered_alert_fails_the_tick_and_is_sent_on_the_next(instance, slack) -> None:
    sensor = build_stale_assets_sensor({LOCATIONS: WINDOWS}, check_keys=[], clock=Clock())
    broken = Ticker(sensor, instance, AlertsResource(slack_webhook_url=slack.broken_webhook_url))
    with pytest.raises(
        AlertDeliveryError, match="No alert delivered: 'Never materialized: square/locations'"
    ):
        broken.tick()
    assert broken.cursor is None

    fixed = Ticker(sensor, instance, AlertsResource(slack_webhook_url=slack.webhook_url))
    fixed.tick()
    assert len(slack.texts) == 1 and "Never materialized" in slack.texts[0]


def test_the_shipped_sensor_watches_the_policy_assets(instance, slack) -> None:
    ticker = Ticker(alert_on_stale_assets, instance, AlertsResource(slack_webhook_url=slack.webhook_url))
    ticker.tick(dg.Definitions(sensors=[alert_on_stale_assets]))
    [text] = slack.texts
    assert "Freshness changed for 6 assets" in text
    for key in ("square/orders", "square/inventory", "logikal/directories", "logikal/projects"):
        assert f"{key}: never materialized" in text

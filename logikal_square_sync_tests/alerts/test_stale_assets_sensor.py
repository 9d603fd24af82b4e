"""`alert_on_stale_assets` across ticks, reading the freshness Dagster's own daemon computes.

Each tick first runs one iteration of Dagster's freshness daemon over the test
code location (what the UI's badges show), then the sensor; the pinned clock
moves instead of anyone sleeping.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.alerts.stale_sensor import alert_on_stale_assets
from logikal_square_sync_tests.alerts import freshness_location as location
from logikal_square_sync_tests.alerts.channels import slack_and_mail
from logikal_square_sync_tests.alerts.freshness_daemon import FreshnessDaemon, freshness_daemon
from logikal_square_sync_tests.alerts.slack import WEBHOOK_PATH
from logikal_square_sync_tests.clock import awkward_moments

WEBSERVER = "http://dagster.example:3000"
MODULE = "logikal_square_sync_tests.alerts.freshness_location"


class Ticker:
    """A daemon iteration, then a sensor tick carrying its cursor, the way the daemon process does."""

    def __init__(self, daemon: FreshnessDaemon, alerts: AlertsResource, definitions: dg.Definitions) -> None:
        self.daemon, self.alerts, self.definitions = daemon, alerts, definitions
        self.cursor: str | None = None

    def tick(self) -> str:
        self.daemon.evaluate()
        context = dg.build_sensor_context(
            instance=self.daemon.instance,
            cursor=self.cursor,
            resources={"alerts": self.alerts},
            definitions=self.definitions,
        )
        data = alert_on_stale_assets.evaluate_tick(context)
        self.cursor = data.cursor
        return data.skip_message or ""


@pytest.fixture(scope="module")
def loaded_daemon(stored_instance: dg.DagsterInstance) -> Iterator[FreshnessDaemon]:
    with freshness_daemon(stored_instance, MODULE) as running:
        yield running


@pytest.fixture
def daemon(loaded_daemon: FreshnessDaemon) -> FreshnessDaemon:
    """The module's daemon over an instance emptied of the previous test's runs and events."""
    loaded_daemon.instance.wipe()
    return loaded_daemon


def _ticker(daemon: FreshnessDaemon, alerts: AlertsResource) -> Ticker:
    return Ticker(
        daemon, alerts, dg.Definitions.merge(location.defs, dg.Definitions(sensors=[alert_on_stale_assets]))
    )


def _materialize(daemon: FreshnessDaemon, *assets: dg.AssetsDefinition) -> datetime:
    dg.materialize(list(assets), instance=daemon.instance, resources={"outcome": location.CheckOutcome()})
    event = daemon.instance.get_latest_materialization_event(assets[0].key)
    assert event is not None
    return datetime.fromtimestamp(event.timestamp, UTC)


def _state(daemon: FreshnessDaemon, key: dg.AssetKey) -> str:
    return daemon.instance.get_freshness_state_records([key])[key].freshness_state.value


@pytest.mark.parametrize("moment", awkward_moments())
def test_alert_and_dagster_agree_at_the_window_edges_at_any_moment(
    daemon, slack, pinned_clock, moment
) -> None:
    # At midnight, month and year ends and across daylight saving: windows are durations, never dates.
    # The clock stands still, so both assets materialize at exactly `moment` and no evaluation, however
    # slow, crosses an edge.
    pinned_clock.move_to(moment, tick=False)
    ticker = _ticker(daemon, AlertsResource(slack_webhook_url=slack.webhook_url))
    t0 = _materialize(daemon, location.orders, location.locations)
    assert t0 == moment
    for offset, dagster_says, alerts in [
        (timedelta(minutes=10) - timedelta(seconds=1), "PASS", 0),
        (timedelta(minutes=10), "WARN", 1),  # the edge: Dagster's evaluation says WARN, and so do we
        (timedelta(minutes=20) - timedelta(seconds=1), "WARN", 1),
        (timedelta(minutes=20), "FAIL", 2),
    ]:
        pinned_clock.move_to(t0 + offset, tick=False)
        ticker.tick()
        assert (_state(daemon, location.ORDERS), len(slack.texts)) == (dagster_says, alerts), offset


def test_one_alert_per_transition_and_a_recovery(daemon, slack, pinned_clock) -> None:
    ticker = _ticker(daemon, AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER))
    t0 = _materialize(daemon, location.orders, location.locations)

    pinned_clock.move_to(t0 + timedelta(minutes=1))
    assert "No change, nothing sent" in ticker.tick()
    pinned_clock.move_to(t0 + timedelta(minutes=11))
    ticker.tick()
    [text] = slack.texts
    assert "Freshness changed for 2 assets" in text and "square/orders: WARN" in text
    assert "11 min ago; warn after 10 min, fail after 20 min" in text
    assert "Runbook: docs/runbook.md#stale-data" in text
    assert f"<{WEBSERVER}/assets|Open in Dagster>" in text

    _materialize(daemon, location.locations)
    pinned_clock.shift(timedelta(minutes=1))
    ticker.tick()
    assert len(slack.texts) == 2 and "Fresh again: square/locations" in slack.texts[1]

    pinned_clock.move_to(t0 + timedelta(minutes=21))
    ticker.tick()
    assert len(slack.texts) == 3
    assert "Stale (FAIL): square/orders" in slack.texts[2] and "(was WARN)" in slack.texts[2]

    pinned_clock.shift(timedelta(minutes=90))
    ticker.tick()
    assert len(slack.texts) == 4, "locations went stale in the meantime; orders still FAIL: no repeat"
    assert "square/locations" in slack.texts[3] and "square/orders" not in slack.texts[3]

    _materialize(daemon, location.orders, location.locations)
    pinned_clock.shift(timedelta(minutes=1))
    ticker.tick()
    assert "square/orders: FRESH (was FAIL)" in slack.texts[4]
    assert slack.texts[4].startswith(":white_check_mark:")
    ticker.tick()
    assert len(slack.texts) == 5


def test_a_fresh_deployment_is_quiet_until_the_first_deadline_passes(
    daemon, slack, pinned_clock, smtp
) -> None:
    alerts = slack_and_mail(slack.webhook_url, smtp.host, smtp.port)
    ticker = _ticker(daemon, alerts)
    assert "No change, nothing sent" in ticker.tick()  # never materialized, not due yet: as the UI says
    pinned_clock.shift(timedelta(minutes=19))
    ticker.tick()
    assert slack.texts == []

    pinned_clock.shift(timedelta(minutes=1))  # the fail window since deployment has passed
    ticker.tick()
    ticker.tick()
    [text] = slack.texts
    [message] = smtp.messages
    assert message["Subject"] == "[ERROR] Freshness changed for 2 assets: square/locations, square/orders"
    body = message.get_content()
    assert "square/orders: never materialized since it was deployed" in body and "it was due by" in body


def test_failed_error_check_alerts_once_and_recovers(daemon, slack) -> None:
    ticker = _ticker(daemon, AlertsResource(slack_webhook_url=slack.webhook_url, webserver_url=WEBSERVER))

    def run_check(*missing: str) -> None:
        dg.materialize(
            [location.orders, location.orders_complete],
            instance=daemon.instance,
            resources={"outcome": location.CheckOutcome(missing=list(missing))},
        )

    run_check()
    ticker.tick()
    assert slack.texts == []

    run_check("ord_1", "ord_2")
    ticker.tick()
    ticker.tick()
    assert len(slack.texts) == 1
    assert "Check failed: square/orders:orders_complete" in slack.texts[0]
    assert "2 orders missing: ord_1, ord_2" in slack.texts[0]
    assert f"{WEBSERVER}/assets/square/orders?view=checks" in slack.texts[0]

    run_check("ord_1", "ord_2", "ord_3")
    assert "failing checks: square/orders:orders_complete" in ticker.tick()
    assert len(slack.texts) == 1, "still failing: no repeat"

    run_check()
    ticker.tick()
    assert len(slack.texts) == 2
    assert "Check passing again: square/orders:orders_complete" in slack.texts[1]


def test_alerts_off_skips_and_keeps_no_state(daemon, slack) -> None:
    ticker = _ticker(daemon, AlertsResource())
    assert ticker.tick().startswith("Alerts are off: set SLACK_WEBHOOK_URL")
    assert ticker.cursor is None
    assert slack.posts == []


def test_undelivered_alert_waits_in_the_outbox_and_is_sent_once(daemon, slack, pinned_clock) -> None:
    broken = _ticker(daemon, AlertsResource(slack_webhook_url=slack.broken_webhook_url))
    _materialize(daemon, location.orders, location.locations)
    broken.tick()
    pinned_clock.shift(timedelta(minutes=11))
    message = broken.tick()
    assert "Waiting in the outbox: 1 for slack. slack failed: Slack webhook answered HTTP 404" in message
    fixed = _ticker(daemon, AlertsResource(slack_webhook_url=slack.webhook_url))
    fixed.cursor = broken.cursor  # the tick returned, so its cursor (with the outbox) is kept
    assert "Sent 'Freshness changed for 2 assets" in fixed.tick()
    fixed.tick()
    assert len(slack.texts) == 1 and "WARN" in slack.texts[0]


def test_a_hanging_webhook_keeps_the_tick_inside_its_deadline(
    daemon, slack, pinned_clock, silent_port, alert_policies
) -> None:
    alert_policies(delivery_deadline_seconds=1.5)
    host, port = slack.url.removeprefix("http://").split(":")
    silent = silent_port(host, int(port))
    ticker = _ticker(
        daemon, AlertsResource(slack_webhook_url=f"http://{silent.host}:{silent.port}{WEBHOOK_PATH}")
    )
    _materialize(daemon, location.orders, location.locations)
    ticker.tick()
    pinned_clock.shift(timedelta(minutes=11))
    started = time.monotonic()
    assert "Waiting in the outbox: 1 for slack" in ticker.tick()
    assert time.monotonic() - started < 5  # Slack's own timeout is 10 s
    silent.silent = False
    ticker.tick()
    ticker.tick()
    assert len(slack.texts) == 1 and "WARN" in slack.texts[0]

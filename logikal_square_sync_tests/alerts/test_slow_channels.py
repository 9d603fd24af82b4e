"""A channel that hangs never holds a tick past its deadline, and nothing is lost or sent twice.

Slack's webhook and the SMTP relay sit behind ports that accept connections and
never answer, as a relay behind a firewall that drops packets does. Alerts wait
in the sensor's outbox (its cursor) per channel until each channel takes them.
"""

from collections.abc import Callable, Iterator

import dagster as dg
import pytest

from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.policies import POLICIES_FILE, PolicyFileError, load_policies
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_tests.alerts.channels import slack_and_mail
from logikal_square_sync_tests.alerts.mail import Mailbox
from logikal_square_sync_tests.alerts.silent_port import SilentPort
from logikal_square_sync_tests.alerts.slack import WEBHOOK_PATH, SlackStandIn
from logikal_square_sync_tests.alerts.ticker import Ticker
from logikal_square_sync_tests.postgres import throwaway_databases

DEADLINE = 1.5  # delivery_deadline_seconds in these tests
# Slack's own timeout (SMTP's is 30 s): a tick that took half of it did not clip its sends. The margin
# over DEADLINE is for the tick's queries on a busy machine.
SLACK_TIMEOUT = 10.0


def _failing_job(name: str) -> dg.JobDefinition:
    @dg.op(name=f"{name}_step")
    def step() -> None:
        raise RuntimeError(f"{name} failed")

    @dg.job(name=name)
    def job() -> None:
        step()

    return job


JOBS = [_failing_job(name) for name in ("nightly_orders", "nightly_catalog", "nightly_inventory")]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest) -> Iterator[dg.DagsterInstance]:
    """Dagster's own storage, where the daemon keeps the sensor's cursor and so the outbox."""
    if request.param == "sqlite":
        instance = dg.DagsterInstance.ephemeral()
        yield instance
        instance.dispose()
        return
    # A database of its own: Dagster's Alembic history must not meet the warehouse's.
    with throwaway_databases("dagster") as (database,):
        url = database.render_as_string(hide_password=False)
        with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance:
            yield instance


@pytest.fixture
def hanging_channels(
    slack: SlackStandIn, smtp: Mailbox, silent_port: Callable[[str, int], SilentPort], alert_policies
) -> tuple[SilentPort, SilentPort, AlertsResource]:
    alert_policies(delivery_deadline_seconds=DEADLINE, heartbeat_timeout_seconds=0.5)
    host, port = slack.url.removeprefix("http://").split(":")
    slack_port, smtp_port = silent_port(host, int(port)), silent_port(smtp.host, smtp.port)
    webhook_url = f"http://{slack_port.host}:{slack_port.port}{WEBHOOK_PATH}"
    alerts = slack_and_mail(webhook_url, smtp_port.host, smtp_port.port)
    return slack_port, smtp_port, alerts


def _fail(instance: dg.DagsterInstance, job: dg.JobDefinition) -> str:
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result.run_id


def test_hanging_channels_keep_the_deadline_and_deliver_each_alert_once(
    storage, tmp_path, slack, smtp, hanging_channels
) -> None:
    slack_port, smtp_port, alerts = hanging_channels
    ticker = Ticker(storage, alerts, WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}"))
    ticker.tick()  # the first tick only starts watching
    first, second = _fail(storage, JOBS[0]), _fail(storage, JOBS[1])

    # Both channels hang: the tick gives up at its deadline, not after 10 s (Slack) or 30 s (SMTP).
    message = ticker.tick()
    assert ticker.seconds[-1] < SLACK_TIMEOUT / 2, ticker.seconds
    assert slack.posts == [] and smtp.envelopes == []
    titles = ["Run failed: nightly_orders", "Run failed: nightly_catalog"]
    assert ticker.waiting() == {"slack": titles, "email": titles}
    assert "Waiting in the outbox: 2 for email, 2 for slack." in message

    # Slack is back, the relay still hangs: Slack gets both, e-mail keeps waiting for them.
    slack_port.silent = False
    ticker.until_sent("slack")
    assert [first in text for text in slack.texts] == [True, False]
    assert [second in text for text in slack.texts] == [False, True]
    assert ticker.waiting() == {"email": titles}

    third = _fail(storage, JOBS[2])
    ticker.tick()
    ticker.until_sent("slack")
    ticker.tick()
    assert len(slack.texts) == 3 and third in slack.texts[2]  # each once, however many ticks pass
    assert smtp.envelopes == []
    assert ticker.waiting() == {"email": [*titles, "Run failed: nightly_inventory"]}
    assert max(ticker.seconds) < SLACK_TIMEOUT / 2, ticker.seconds

    # The relay is back: each alert by e-mail once, oldest first; Slack hears nothing again.
    smtp_port.silent = False
    messages = ticker.until_sent("email")
    assert any("Sent 'Run failed: nightly_orders' via email" in message for message in messages), messages
    ticker.tick()
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects == [f"[ERROR] {title}" for title in [*titles, "Run failed: nightly_inventory"]]
    assert len(slack.texts) == 3 and ticker.waiting() == {}


def test_an_alert_is_never_lost_when_a_channel_fails_beyond_the_outbox(
    instance, tmp_path, slack, alert_policies
) -> None:
    """Past outbox_max_alerts the oldest alerts become one notice that names them; the newest stay."""
    alert_policies(outbox_max_alerts=2)
    broken = AlertsResource(slack_webhook_url=slack.broken_webhook_url)
    ticker = Ticker(instance, broken, WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}"))
    ticker.tick()
    for job in JOBS:
        _fail(instance, job)
        assert "slack failed: Slack webhook answered HTTP 404" in ticker.tick()
    assert ticker.waiting() == {
        "slack": ["2 alert(s) dropped: a channel failed for too long", "Run failed: nightly_inventory"]
    }

    ticker.alerts = AlertsResource(slack_webhook_url=slack.webhook_url)  # the webhook is fixed
    ticker.tick()
    notice, last = slack.texts
    assert "nightly_orders" in notice and "nightly_catalog" in notice and "outbox_max_alerts" in notice
    assert "*Run failed: nightly_inventory*" in last
    ticker.tick()
    assert len(slack.texts) == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            "{delivery_deadline_seconds: 50}",
            r"alerts: .*delivery_deadline_seconds \+ heartbeat_timeout_seconds must be at most 45",
        ),
        (
            "{delivery_deadline_seconds: 0.2}",
            r"alerts\.delivery_deadline_seconds: .*greater than or equal to 1",
        ),
        ("{outbox_max_alerts: 0}", r"alerts\.outbox_max_alerts: .*greater than or equal to 1"),
    ],
)
def test_a_deadline_dagster_would_cut_off_fails_at_load(tmp_path, values, message) -> None:
    override = tmp_path / "policies.yaml"
    override.write_text(f"alerts: {values}\n")
    with pytest.raises(PolicyFileError, match=message):
        load_policies(POLICIES_FILE, override)


def test_a_warehouse_that_hangs_does_not_hold_the_alert(instance, slack, silent_port, alert_policies) -> None:
    """The warehouse only names LogiKal projects; hanging, the alert names the project by GUID in time."""
    alert_policies(delivery_deadline_seconds=DEADLINE)
    silent = silent_port("127.0.0.1", 5432)  # a PostgreSQL server that accepts and never answers
    hanging = WarehouseResource(url=f"postgresql+psycopg2://lss@{silent.host}:{silent.port}/warehouse")
    ticker = Ticker(instance, AlertsResource(slack_webhook_url=slack.webhook_url), hanging)
    ticker.tick()
    project = "6f1c2a7e-0d4b-4b8e-9a51-3c2d1e0f9a88"
    result = JOBS[0].execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": project}
    )
    assert "Sent 'Run failed: nightly_orders" in ticker.tick()
    assert ticker.seconds[-1] < SLACK_TIMEOUT / 2, ticker.seconds
    [text] = slack.texts
    assert f"nightly_orders [{project}]" in text and result.run_id in text

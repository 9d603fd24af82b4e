"""With Dagster's run retries on, a failed run that will be retried is not alerted; its last retry is.

The runs, their retries and the `dagster/will_retry` decisions are Dagster's own:
the instance has `run_retries` on, so Dagster tags each failure as it stores it,
and the retry is a real re-execution from failure of the failed run.
"""

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import time_machine

# Not exported by `dagster`: the auto-retry daemon's own decision, which it tags on a failure left untagged.
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.alerts.retry_decision import AUTO_RETRY_RUN_ID_TAG, WILL_RETRY_TAG
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_tests.alerts.slack import SlackStandIn
from logikal_square_sync_tests.alerts.ticker import Ticker

RETRIES = {"run_retries": {"enabled": True, "max_retries": 1}}


@dg.op
def fetch_orders() -> None:
    raise RuntimeError("Square SearchOrders still failing after 6 attempts (last: ConnectError)")


@dg.job(executor_def=dg.in_process_executor)
def nightly_orders() -> None:
    fetch_orders()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "dagster_home"


@pytest.fixture
def retrying(home: Path) -> Iterator[dg.DagsterInstance]:
    home.mkdir()
    with dg.instance_for_test(overrides=RETRIES, temp_dir=str(home)) as instance:
        yield instance


@pytest.fixture
def undecided(home: Path) -> Iterator[tuple[dg.DagsterInstance, dg.DagsterInstance]]:
    """One storage seen by a writer that tags nothing (a failure stored, its retry decision not yet)
    and by an instance with run retries on."""
    home.mkdir()
    with (
        dg.instance_for_test(temp_dir=str(home)) as untagged,
        dg.instance_for_test(overrides=RETRIES, temp_dir=str(home)) as retrying,
    ):
        yield untagged, retrying


def _tags(instance: dg.DagsterInstance, run_id: str) -> Mapping[str, str]:
    run = instance.get_run_by_id(run_id)
    assert run is not None, run_id
    return run.tags


def _ticker(instance: dg.DagsterInstance, slack: SlackStandIn, tmp_path: Path) -> Ticker:
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    ticker = Ticker(instance, AlertsResource(slack_webhook_url=slack.webhook_url), warehouse)
    assert "Watching runs from now on" in ticker.tick()
    return ticker


def _fail(instance: dg.DagsterInstance, **tags: str) -> str:
    result = dg.execute_job(dg.reconstructable(nightly_orders), instance, tags=tags)
    assert not result.success
    return result.run_id


def test_a_run_dagster_retries_is_quiet_and_its_last_retry_alerts(retrying, slack, tmp_path) -> None:
    ticker = _ticker(retrying, slack, tmp_path)
    first = _fail(retrying)
    assert _tags(retrying, first)[WILL_RETRY_TAG] == "true"  # Dagster's own decision
    assert "1 failed run(s) waiting for Dagster's retry decision" in ticker.tick()
    assert slack.texts == []

    # What the auto-retry daemon does (create_reexecuted_run): a re-execution from failure, tagged with
    # its run group and retry number, and noted on the failed run.
    retry = dg.execute_job(
        dg.reconstructable(nightly_orders),
        retrying,
        reexecution_options=dg.ReexecutionOptions.from_failure(first, retrying),
        tags={"dagster/parent_run_id": first, "dagster/root_run_id": first, "dagster/retry_number": "1"},
    )
    retrying.add_run_tags(first, {AUTO_RETRY_RUN_ID_TAG: retry.run_id})
    assert not retry.success
    assert _tags(retrying, retry.run_id)[WILL_RETRY_TAG] == "false"  # the last retry

    ticker.tick()
    ticker.tick()
    [text] = slack.texts
    assert "*Run failed: nightly_orders*" in text and retry.run_id in text and first not in text


def test_a_failure_seen_before_dagster_decides_waits_for_the_decision(
    undecided: tuple[dg.DagsterInstance, dg.DagsterInstance],
    slack: SlackStandIn,
    tmp_path: Path,
    alert_policies: Callable[..., None],
) -> None:
    """The will_retry tag is written just after the failure: a tick in between must not alert yet."""
    alert_policies(retry_decision_wait_seconds=120)
    untagged, retrying = undecided
    ticker = _ticker(retrying, slack, tmp_path)
    run_id = _fail(untagged, **{"dagster/max_retries": "0"})
    assert WILL_RETRY_TAG not in _tags(retrying, run_id)
    assert "1 failed run(s) waiting" in ticker.tick()
    assert slack.texts == []

    run = retrying.get_run_by_id(run_id)
    assert run is not None and not should_retry(run, retrying)  # Dagster decides, and tags it
    ticker.tick()
    ticker.tick()
    assert len(slack.texts) == 1 and run_id in slack.texts[0]


def test_a_decision_that_never_comes_alerts_after_the_wait(
    undecided: tuple[dg.DagsterInstance, dg.DagsterInstance],
    slack: SlackStandIn,
    tmp_path: Path,
    alert_policies: Callable[..., None],
    pinned_clock: time_machine.Traveller,
) -> None:
    alert_policies(retry_decision_wait_seconds=120)
    untagged, retrying = undecided
    ticker = _ticker(retrying, slack, tmp_path)
    run_id = _fail(untagged)
    ticker.tick()
    pinned_clock.shift(timedelta(seconds=100))
    ticker.tick()
    assert slack.texts == []
    pinned_clock.shift(timedelta(seconds=30))
    assert "Sent 'Run failed: nightly_orders' via slack" in ticker.tick()
    ticker.tick()
    assert len(slack.texts) == 1 and run_id in slack.texts[0]

"""The pure freshness rules: Dagster's states as alert states, first deadlines, which changes alert."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

# Not exported by `dagster`: the record the freshness daemon stores.
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateRecord, FreshnessStateRecordBody

from logikal_square_sync.alerts.check_states import CheckState, needs_check_alert
from logikal_square_sync.alerts.freshness import (
    AlertState,
    alert_state,
    describe_policy,
    first_deadline,
    needs_alert,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=60), warn_window=timedelta(minutes=45))
BERLIN_DAILY = dg.FreshnessPolicy.cron(
    deadline_cron="0 4 * * *", lower_bound_delta=timedelta(hours=2), timezone="Europe/Berlin"
)
F, W, X, N, P = (
    AlertState.FRESH,
    AlertState.WARN,
    AlertState.FAIL,
    AlertState.NEVER_MATERIALIZED,
    AlertState.PENDING,
)


def _record(state: FreshnessState) -> FreshnessStateRecord:
    return FreshnessStateRecord(
        entity_key=dg.AssetKey("a"),
        freshness_state=state,
        updated_at=NOW,
        record_body=FreshnessStateRecordBody(metadata={}),
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [(FreshnessState.PASS, F), (FreshnessState.WARN, W), (FreshnessState.FAIL, X)],
)
def test_dagsters_states_are_taken_as_they_are(state: FreshnessState, expected: AlertState) -> None:
    assert alert_state(_record(state), WINDOW, materialized=True, first_seen=NOW, now=NOW) == expected


def test_a_never_materialized_asset_is_quiet_until_its_first_deadline() -> None:
    unknown = _record(FreshnessState.UNKNOWN)
    due = first_deadline(WINDOW, NOW)
    assert due == NOW + timedelta(minutes=60)
    for record in (unknown, None):  # None: the daemon has not evaluated it yet
        assert (
            alert_state(record, WINDOW, materialized=False, first_seen=NOW, now=due - timedelta(seconds=1))
            == P
        )
        assert alert_state(record, WINDOW, materialized=False, first_seen=NOW, now=due) == N
    # Materialized but not evaluated yet: nothing to say either.
    assert alert_state(None, WINDOW, materialized=True, first_seen=NOW, now=due + timedelta(days=1)) == P


def test_a_cron_policy_is_first_due_at_its_next_deadline_in_its_zone() -> None:
    # 2026-03-29: Berlin springs forward; 04:00 CEST is 02:00 UTC.
    deployed = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 23:00 CET
    assert first_deadline(BERLIN_DAILY, deployed) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert "0 4 * * *" in describe_policy(BERLIN_DAILY) and "Europe/Berlin" in describe_policy(BERLIN_DAILY)
    assert describe_policy(WINDOW) == "warn after 45 min, fail after 60 min"


@pytest.mark.parametrize(
    ("previous", "current", "alert"),
    [
        (None, F, False),  # first look, all good
        (None, P, False),  # a fresh deployment: not due yet, nothing to say
        (P, P, False),
        (P, F, False),  # its first materialization
        (P, N, True),  # its first deadline passed without one
        (None, W, True),
        (None, N, True),
        (F, F, False),
        (F, W, True),
        (W, W, False),  # still stale: no repeat
        (W, X, True),
        (X, X, False),
        (X, W, False),  # better but still stale: the FAIL alert stands
        (X, F, True),  # recovery
        (W, F, True),
        (N, N, False),
        (N, F, True),
    ],
)
def test_alerts_only_on_transitions(previous, current, alert: bool) -> None:
    assert needs_alert(previous, current) is alert


@pytest.mark.parametrize(
    ("previous", "current", "alert"),
    [
        (None, CheckState.PASSED, False),
        (None, CheckState.FAILED, True),
        (CheckState.PASSED, CheckState.FAILED, True),
        (CheckState.WARNED, CheckState.FAILED, True),
        (CheckState.FAILED, CheckState.FAILED, False),
        (CheckState.FAILED, CheckState.PASSED, True),
        (CheckState.FAILED, CheckState.WARNED, True),
        (CheckState.PASSED, CheckState.WARNED, False),  # WARN severity shows in the UI only
    ],
)
def test_check_alerts_only_on_error_transitions(previous, current, alert: bool) -> None:
    assert needs_check_alert(previous, current) is alert

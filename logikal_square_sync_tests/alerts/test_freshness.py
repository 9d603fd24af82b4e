"""The pure freshness rules: states by age, and which changes alert."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from logikal_square_sync.alerts.check_states import CheckState, needs_check_alert
from logikal_square_sync.alerts.freshness import (
    FreshnessState,
    FreshnessWindows,
    freshness_state,
    needs_alert,
    policy_windows,
)
from logikal_square_sync.policies import policies

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WARN, FAIL = timedelta(minutes=45), timedelta(minutes=60)
F, W, X, N = FreshnessState.FRESH, FreshnessState.WARN, FreshnessState.FAIL, FreshnessState.NEVER_MATERIALIZED


@pytest.mark.parametrize(
    ("age_minutes", "expected"),
    [(0, F), (45, F), (46, W), (60, W), (61, X), (60 * 24 * 30, X)],
)
def test_state_by_age(age_minutes: int, expected: FreshnessState) -> None:
    assert freshness_state(NOW - timedelta(minutes=age_minutes), WARN, FAIL, NOW) == expected


def test_never_materialized() -> None:
    assert freshness_state(None, WARN, FAIL, NOW) == N


@pytest.mark.parametrize(
    ("previous", "current", "alert"),
    [
        (None, F, False),  # first look, all good
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


def test_policy_windows_cover_the_unpartitioned_assets() -> None:
    windows = policy_windows()
    assert {key.to_user_string() for key in windows} == {
        "square/locations",
        "square/catalog",
        "square/orders",
        "square/inventory",
        "logikal/directories",
        "logikal/projects",
    }
    projects = policies().logikal.projects
    assert windows[dg.AssetKey(["logikal", "projects"])] == FreshnessWindows(
        warn=timedelta(minutes=projects.warn_after_minutes),
        fail=timedelta(minutes=projects.fail_after_minutes),
    )

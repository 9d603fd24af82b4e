"""The schedules over a whole calendar year, in UTC and in Europe/Berlin, against the freshness policies.

A daily 02:00 schedule in a zone with daylight saving runs 23 or 25 hours
apart twice a year, and on the night clocks spring forward it runs at 03:00.
These tests walk every tick Dagster's own cron iterator produces for 2026 (the
daemon uses the same iterator) and check that every run has time to finish
before the freshness deadline that follows it (cron policies), or that no gap
between two runs plus a run's time reaches the warn window (interval policies),
and that a daily schedule runs once on every local day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

# Not exported either: the policy types behind FreshnessPolicy's constructors.
from dagster._core.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy

# Not exported by `dagster`, but it is what the daemon walks to fire schedules.
from dagster._utils.schedules import cron_string_iterator

from logikal_square_sync.definitions import build_defs
from logikal_square_sync.logikal.schedules import logikal_schedules
from logikal_square_sync.maintenance.schedules import maintenance_schedules
from logikal_square_sync.orchestration.freshness_policies import freshness_policy
from logikal_square_sync.policies import SyncPolicy, policies
from logikal_square_sync.square.schedules import square_schedules
from logikal_square_sync_tests.clock import TIMEZONES

YEAR = 2026
# A run started by a tick may take this long (at most) before its materialization lands.
RUN_ALLOWANCE = timedelta(hours=1)


def _ticks(schedule: dg.ScheduleDefinition) -> list[datetime]:
    start = datetime(YEAR, 1, 1, tzinfo=ZoneInfo(schedule.execution_timezone or "UTC"))
    ticks: list[datetime] = []
    cron = schedule.cron_schedule
    assert isinstance(cron, str), cron  # one cron string per schedule
    for tick in cron_string_iterator(start.timestamp(), cron, schedule.execution_timezone):
        if tick.year > YEAR:
            return ticks
        ticks.append(tick)
    raise AssertionError("unreachable")


def _schedules(monkeypatch: pytest.MonkeyPatch, zone: str) -> list[dg.ScheduleDefinition]:
    monkeypatch.setenv("SYNC_TIMEZONE", zone)
    # The purge syncs no asset: it is walked too, with no freshness to keep.
    return [*square_schedules(), *logikal_schedules(), *maintenance_schedules()]


def _policy(key: dg.AssetKey) -> SyncPolicy:
    group = policies().square if key.path[0] == "square" else policies().logikal
    return getattr(group, key.path[1])


def _deadlines(policy: CronFreshnessPolicy) -> list[datetime]:
    """Every deadline of the year, and the first of the next (the last run of the year is due then)."""
    start = datetime(YEAR, 1, 1, tzinfo=ZoneInfo(policy.timezone))
    deadlines = []
    for tick in cron_string_iterator(start.timestamp(), policy.deadline_cron, policy.timezone):
        deadlines.append(tick.astimezone(UTC))
        if tick.year > YEAR:
            return deadlines
    raise AssertionError("unreachable")


@pytest.mark.parametrize("zone", TIMEZONES)
def test_every_run_has_time_before_its_freshness_deadline(monkeypatch, zone: str) -> None:
    schedules = _schedules(monkeypatch, zone)
    defs = build_defs()
    assert {s.name for s in schedules} == {s.name for s in defs.schedules or []}
    for schedule in schedules:
        assert schedule.execution_timezone == zone
        ticks = [tick.astimezone(UTC) for tick in _ticks(schedule)]
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        allowance = min(RUN_ALLOWANCE, min(gaps) / 2)
        for key in defs.resolve_job_def(schedule.job_name).asset_layer.executable_asset_keys:
            policy = freshness_policy(_policy(key))  # built now, in this zone
            name = f"{schedule.name} ({schedule.cron_schedule}, {zone}) for {key.to_user_string()}"
            if isinstance(policy, CronFreshnessPolicy):
                assert policy.timezone == zone
                deadlines = _deadlines(policy)
                for tick in ticks:
                    due = next(d for d in deadlines if d > tick)
                    assert due - tick >= allowance, f"{name}: the run at {tick} has until {due} only"
                    assert due - policy.lower_bound_delta <= tick, f"{name}: {tick} is too early"
            else:
                assert isinstance(policy, TimeWindowFreshnessPolicy)
                assert policy.warn_window is not None
                warn = policy.warn_window.to_timedelta()
                assert max(gaps) + allowance <= warn, f"{name}: runs up to {max(gaps)} apart, WARN at {warn}"


@pytest.mark.parametrize("zone", TIMEZONES)
def test_a_daily_schedule_runs_once_on_every_local_day(monkeypatch, zone: str) -> None:
    (daily,) = [s for s in _schedules(monkeypatch, zone) if s.name == "square_daily_sync"]
    days = [tick.astimezone(ZoneInfo(zone)).date() for tick in _ticks(daily)]
    expected = [date(YEAR, 1, 1) + timedelta(days=n) for n in range(365)]
    assert days == expected
    # On the night Berlin springs forward 02:00 does not exist: Dagster runs at 03:00 local instead.
    spring = next(t for t in _ticks(daily) if t.date() == date(YEAR, 3, 29))
    assert spring.hour == (3 if zone == "Europe/Berlin" else 2)

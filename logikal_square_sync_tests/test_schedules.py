"""The schedules over a whole calendar year, in UTC and in Europe/Berlin, against the freshness windows.

A daily 02:00 schedule in a zone with daylight saving runs 23 or 25 hours
apart twice a year; a warn window of exactly 25 h would then page every
October. These tests walk every tick Dagster's own cron iterator produces for
2026 (the daemon uses the same iterator) and check that no gap between two
runs, plus the time a run may take, reaches the warn window of an asset the
schedule keeps fresh, and that a daily schedule runs once on every local day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

# Not exported by `dagster`, but it is what the daemon walks to fire schedules.
from dagster._utils.schedules import cron_string_iterator

from logikal_square_sync.definitions import defs
from logikal_square_sync.logikal.schedules import logikal_schedules
from logikal_square_sync.square.schedules import square_schedules
from logikal_square_sync_tests.clock import TIMEZONES

YEAR = 2026
# A run started by a tick may take this long (at most) before its materialization lands.
RUN_ALLOWANCE = timedelta(hours=1)


def _ticks(schedule: dg.ScheduleDefinition) -> list[datetime]:
    start = datetime(YEAR, 1, 1, tzinfo=ZoneInfo(schedule.execution_timezone or "UTC"))
    ticks = []
    for tick in cron_string_iterator(start.timestamp(), schedule.cron_schedule, schedule.execution_timezone):
        if tick.year > YEAR:
            return ticks
        ticks.append(tick)
    raise AssertionError("unreachable")


def _schedules(monkeypatch: pytest.MonkeyPatch, zone: str) -> list[dg.ScheduleDefinition]:
    monkeypatch.setenv("SYNC_TIMEZONE", zone)
    return [*square_schedules(), *logikal_schedules()]


@pytest.mark.parametrize("zone", TIMEZONES)
def test_no_gap_between_runs_reaches_a_warn_window(monkeypatch, zone: str) -> None:
    graph = defs.resolve_asset_graph()
    schedules = _schedules(monkeypatch, zone)
    assert {s.name for s in schedules} == {s.name for s in defs.schedules or []}
    for schedule in schedules:
        assert schedule.execution_timezone == zone
        ticks = _ticks(schedule)
        gaps = [b.astimezone(UTC) - a.astimezone(UTC) for a, b in zip(ticks, ticks[1:], strict=False)]
        nominal = min(gaps)
        allowance = min(RUN_ALLOWANCE, nominal / 2)
        job = defs.resolve_job_def(schedule.job_name)
        for key in job.asset_layer.executable_asset_keys:
            policy = graph.get(key).freshness_policy
            window = getattr(policy, "warn_window", None)  # a FreshnessPolicy.time_window(...)
            assert window is not None, key
            warn = window.to_timedelta()
            assert max(gaps) + allowance <= warn, (
                f"{schedule.name} ({schedule.cron_schedule}, {zone}) runs up to {max(gaps)} apart; "
                f"{key.to_user_string()} would WARN at {warn}"
            )


@pytest.mark.parametrize("zone", TIMEZONES)
def test_a_daily_schedule_runs_once_on_every_local_day(monkeypatch, zone: str) -> None:
    (daily,) = [s for s in _schedules(monkeypatch, zone) if s.name == "square_daily_sync"]
    days = [tick.astimezone(ZoneInfo(zone)).date() for tick in _ticks(daily)]
    expected = [date(YEAR, 1, 1) + timedelta(days=n) for n in range(365)]
    assert days == expected
    # On the night Berlin springs forward 02:00 does not exist: Dagster runs at 03:00 local instead.
    spring = next(t for t in _ticks(daily) if t.date() == date(YEAR, 3, 29))
    assert spring.hour == (3 if zone == "Europe/Berlin" else 2)

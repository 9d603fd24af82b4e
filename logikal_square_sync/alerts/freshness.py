"""Freshness as Dagster computes it, turned into alert states, and which changes deserve an alert.

Dagster's freshness daemon evaluates every asset's `FreshnessPolicy` and keeps
the result (PASS, WARN, FAIL, UNKNOWN) in the instance; the UI's badges show
exactly that. The staleness sensor reads the same records instead of
recomputing them, so an alert and the badge never disagree, not even at the
boundary of a window. The one thing Dagster leaves open is an asset that was
never materialized (UNKNOWN): it is not news before its first deadline has
passed, only after.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

import dagster as dg

# Not exported by `dagster`: the state records and the policy types behind FreshnessPolicy's constructors.
from dagster._core.definitions.freshness import (
    CronFreshnessPolicy,
    FreshnessState,
    FreshnessStateRecord,
    TimeWindowFreshnessPolicy,
)

# Not exported either: the cron iterator the daemon fires schedules and deadlines with.
from dagster._utils.schedules import cron_string_iterator


class AlertState(StrEnum):
    FRESH = "FRESH"
    WARN = "WARN"
    FAIL = "FAIL"
    NEVER_MATERIALIZED = "NEVER_MATERIALIZED"  # and its first deadline has passed
    PENDING = "PENDING"  # never materialized, but not due yet (or not evaluated yet): nothing to say


STALE = {AlertState.WARN, AlertState.FAIL, AlertState.NEVER_MATERIALIZED}
_QUIET = {AlertState.FRESH, AlertState.PENDING}


def first_deadline(policy: dg.FreshnessPolicy, first_seen: datetime) -> datetime:
    """When an asset first seen (deployed) at `first_seen` is overdue if it never materialized."""
    if isinstance(policy, CronFreshnessPolicy):
        ticks = cron_string_iterator(first_seen.timestamp(), policy.deadline_cron, policy.timezone)
        return next(ticks).astimezone(UTC)
    if isinstance(policy, TimeWindowFreshnessPolicy):
        return first_seen + policy.fail_window.to_timedelta()
    raise TypeError(f"unknown freshness policy {type(policy).__name__}")


def alert_state(
    record: FreshnessStateRecord | None,
    policy: dg.FreshnessPolicy,
    *,
    materialized: bool,
    first_seen: datetime,
    now: datetime,
) -> AlertState:
    """Dagster's state of one asset, with a never-materialized asset quiet until its first deadline."""
    state = record.freshness_state if record is not None else FreshnessState.UNKNOWN
    if state == FreshnessState.PASS:
        return AlertState.FRESH
    if state == FreshnessState.WARN:
        return AlertState.WARN
    if state == FreshnessState.FAIL:
        return AlertState.FAIL
    if not materialized and now >= first_deadline(policy, first_seen):
        return AlertState.NEVER_MATERIALIZED
    return AlertState.PENDING


def needs_alert(previous: AlertState | None, current: AlertState) -> bool:
    """Alert on a change into a stale state and on recovery to FRESH; `previous` None is a first look.

    FAIL -> WARN is an improvement that is still stale: no message, the FAIL
    alert stands until the recovery message. PENDING is as quiet as FRESH.
    """
    before = AlertState.FRESH if previous in (None, AlertState.PENDING) else previous
    now = AlertState.FRESH if current == AlertState.PENDING else current
    if before == now:
        return False
    if now == AlertState.FRESH:
        return before in STALE
    return not (before == AlertState.FAIL and now == AlertState.WARN)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.0f} h" if hours == int(hours) else f"{hours:.1f} h"


def describe_policy(policy: dg.FreshnessPolicy) -> str:
    """The policy in words, for alert texts (read from the asset definition, never repeated)."""
    if isinstance(policy, TimeWindowFreshnessPolicy):
        fail = _duration(policy.fail_window.to_timedelta())
        if policy.warn_window is None:
            return f"fails after {fail}"
        return f"warn after {_duration(policy.warn_window.to_timedelta())}, fail after {fail}"
    if isinstance(policy, CronFreshnessPolicy):
        window = _duration(policy.lower_bound_delta)
        deadline = f"'{policy.deadline_cron}' ({policy.timezone})"
        return f"due by each {deadline}, materialized within {window} before it"
    return type(policy).__name__

"""Freshness states of the unpartitioned assets and which state changes deserve an alert.

Pure functions: the staleness sensor feeds them times from the Dagster
instance and keeps the previous states in its cursor.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import dagster as dg

from logikal_square_sync.policies import SyncPolicy, policies


class FreshnessState(StrEnum):
    FRESH = "FRESH"
    WARN = "WARN"
    FAIL = "FAIL"
    NEVER_MATERIALIZED = "NEVER_MATERIALIZED"


STALE = {FreshnessState.WARN, FreshnessState.FAIL, FreshnessState.NEVER_MATERIALIZED}


@dataclass(frozen=True)
class FreshnessWindows:
    """Data older than `warn` is WARN, older than `fail` is FAIL (the FreshnessPolicy time windows)."""

    warn: timedelta
    fail: timedelta

    @classmethod
    def of(cls, policy: SyncPolicy) -> "FreshnessWindows":
        return cls(
            warn=timedelta(minutes=policy.warn_after_minutes),
            fail=timedelta(minutes=policy.fail_after_minutes),
        )


def freshness_state(
    last_materialized_at: datetime | None, warn: timedelta, fail: timedelta, now: datetime
) -> FreshnessState:
    """FRESH, WARN or FAIL by the age of the last materialization; NEVER_MATERIALIZED without one."""
    if last_materialized_at is None:
        return FreshnessState.NEVER_MATERIALIZED
    age = now - last_materialized_at
    if age > fail:
        return FreshnessState.FAIL
    if age > warn:
        return FreshnessState.WARN
    return FreshnessState.FRESH


def needs_alert(previous: FreshnessState | None, current: FreshnessState) -> bool:
    """Alert on a change into a stale state and on recovery to FRESH; `previous` None is a first look.

    FAIL -> WARN is an improvement that is still stale: no message, the FAIL
    alert stands until the recovery message.
    """
    previous = previous or FreshnessState.FRESH
    if previous == current:
        return False
    if current == FreshnessState.FRESH:
        return previous in STALE
    return not (previous == FreshnessState.FAIL and current == FreshnessState.WARN)


def policy_windows() -> dict[dg.AssetKey, FreshnessWindows]:
    """The windows of policies.yaml for every enabled unpartitioned asset.

    The partitioned LogiKal assets (phases, elevations, parts lists) are judged
    per project by the `project_contents_fresh` check, whose failures the same
    sensor reports. A disabled policy has no background sync, so its asset
    going stale is expected, not news.
    """
    square, logikal = policies().square, policies().logikal
    by_key: Mapping[tuple[str, str], SyncPolicy] = {
        ("square", "locations"): square.locations,
        ("square", "catalog"): square.catalog,
        ("square", "orders"): square.orders,
        ("square", "inventory"): square.inventory,
        ("logikal", "directories"): logikal.directories,
        ("logikal", "projects"): logikal.projects,
    }
    return {dg.AssetKey(list(path)): FreshnessWindows.of(p) for path, p in by_key.items() if p.enabled}

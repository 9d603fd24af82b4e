"""The sync policies in Dagster's terms: FreshnessPolicy objects and the asset pages' policy metadata.

`policies.py` holds the models and loads them without Dagster (the engines read them); this
module is for the Dagster-facing modules that declare assets.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import dagster as dg

# Not exported by `dagster`: the interval check its cron freshness policy applies.
from dagster._utils.schedules import get_smallest_cron_interval

from logikal_square_sync.policies import POLICIES_FILE, SyncPolicy, override_file, shift_cron


def freshness_policy(policy: SyncPolicy) -> dg.FreshnessPolicy:
    """A cron deadline (in SYNC_TIMEZONE, like the schedule) or warn/fail time windows."""
    if policy.cron is not None and policy.deadline_after_minutes is not None:
        # Imported here: settings reads the environment, policies only the files.
        from logikal_square_sync.orchestration.settings import sync_timezone

        deadline = shift_cron(policy.cron, policy.deadline_after_minutes)
        return _cron_freshness_policy(deadline, policy.deadline_after_minutes, sync_timezone())
    return dg.FreshnessPolicy.time_window(fail_window=policy.fail_after, warn_window=policy.warn_after)


@functools.cache
def _cron_freshness_policy(deadline: str, window_minutes: int, timezone: str) -> dg.FreshnessPolicy:
    # Cached: finding a cron's smallest interval walks a thousand ticks, here and again inside
    # Dagster's policy, and the assets of a source system share one deadline (tens of ms each).
    # Dagster takes at most the cron's own interval as the window before each deadline.
    interval = timedelta(seconds=get_smallest_cron_interval(deadline).total_seconds())
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline,
        lower_bound_delta=min(timedelta(minutes=window_minutes), interval),
        timezone=timezone,
    )


def policy_metadata(policy: SyncPolicy) -> dict[str, Any]:
    """Definition metadata showing the policy in force (packaged defaults + LSS_POLICIES_FILE)."""
    override = override_file()
    source = f"{POLICIES_FILE.name} + {override}" if override else POLICIES_FILE.name
    return {
        "sync_policy": dg.MetadataValue.json(policy.model_dump(mode="json")),
        "sync_policy_source": dg.MetadataValue.text(source),
    }

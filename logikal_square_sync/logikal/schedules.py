"""Schedules of the unpartitioned LogiKal assets, from the intervals in policies.yaml."""

from __future__ import annotations

import dagster as dg

from logikal_square_sync.logikal.assets import logikal_directories, logikal_projects
from logikal_square_sync.orchestration.background_switch import background_schedule
from logikal_square_sync.orchestration.settings import default_status, sync_timezone
from logikal_square_sync.policies import LogikalPolicies, max_runtime_tags, policies, run_retry_tags


def interval_cron(minutes: int, offset: int = 0) -> str:
    """A cron expression firing every `minutes`, `offset` minutes past the start of the cycle."""
    if 0 < minutes < 60 and 60 % minutes == 0:
        return ",".join(str(m) for m in range(offset % minutes, 60, minutes)) + " * * * *"
    if minutes % 60 == 0 and 1440 % minutes == 0:
        hours = minutes // 60
        return f"{offset % 60} {'*' if hours == 1 else f'*/{hours}'} * * *"
    raise ValueError(f"interval_minutes={minutes} must divide an hour or a day to become a schedule")


def logikal_schedules(logikal: LogikalPolicies | None = None) -> list[dg.ScheduleDefinition]:
    logikal = logikal or policies().logikal
    # Projects run a few minutes after directories, so a new directory's projects appear in one cycle.
    planned = [
        ("logikal_directories_schedule", logikal_directories, logikal.directories, 0),
        ("logikal_projects_schedule", logikal_projects, logikal.projects, 5),
    ]
    schedules = []
    for name, asset, policy, offset in planned:
        if not policy.enabled:
            continue
        cron = policy.cron or interval_cron(policy.interval_minutes or 60, offset)
        schedules.append(
            background_schedule(
                name=name,
                target=dg.AssetSelection.assets(asset),
                cron_schedule=cron,
                execution_timezone=sync_timezone(),
                default_status=default_status(),
                tags={**max_runtime_tags(policy), **run_retry_tags(policies().retries)},
                description=f"Syncs {asset.key.to_user_string()} at {cron} (policies.yaml).",
            )
        )
    return schedules

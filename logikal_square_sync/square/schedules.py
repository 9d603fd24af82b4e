"""When the Square assets sync in the background (policies.yaml)."""

from __future__ import annotations

from collections import defaultdict

import dagster as dg

from logikal_square_sync.policies import SquarePolicies, SyncPolicy, max_runtime_tags, policies
from logikal_square_sync.settings import default_status, sync_timezone


def square_schedules(square: SquarePolicies | None = None) -> list[dg.ScheduleDefinition]:
    """One schedule per distinct cron among the enabled Square policies."""
    square = square or policies().square
    keys_by_cron: dict[str, list[dg.AssetKey]] = defaultdict(list)
    policies_by_cron: dict[str, list[SyncPolicy]] = defaultdict(list)
    for name, policy in square:
        if policy.enabled and policy.cron:
            keys_by_cron[policy.cron].append(dg.AssetKey(["square", name]))
            policies_by_cron[policy.cron].append(policy)
    schedules = []
    for index, (cron, keys) in enumerate(sorted(keys_by_cron.items())):
        schedules.append(
            dg.ScheduleDefinition(
                name="square_daily_sync" if index == 0 else f"square_sync_{index}",
                target=dg.AssetSelection.assets(*keys),
                cron_schedule=cron,
                execution_timezone=sync_timezone(),
                default_status=default_status(),
                tags=max_runtime_tags(*policies_by_cron[cron]),
                description=f"Syncs {', '.join(key.to_user_string() for key in keys)} at {cron}.",
            )
        )
    return schedules

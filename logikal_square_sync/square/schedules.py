"""When the Square assets sync in the background (policies.yaml)."""

from __future__ import annotations

from collections import defaultdict

import dagster as dg

from logikal_square_sync.orchestration.background_switch import background_schedule
from logikal_square_sync.orchestration.settings import default_status, sync_timezone
from logikal_square_sync.policies import (
    SquarePolicies,
    SyncPolicy,
    max_runtime_tags,
    policies,
    run_retry_tags,
)

# Every Square object shares the packaged cron, and this schedule has always run them all: the name
# stays for that set of objects (its on/off state in the instance and the runs it started keep it).
ALL_SQUARE_SCHEDULE = "square_daily_sync"


def schedule_name(objects: list[str], every_object: list[str]) -> str:
    """Named after the objects it syncs, never after its cron or its place among the others.

    A schedule's name is where Dagster keeps its on/off state: a cron change that splits an
    object off must not hand the name (and the state) to a schedule running other objects.
    """
    if objects == every_object:
        return ALL_SQUARE_SCHEDULE
    return f"square_{'_'.join(objects)}_sync"


def square_schedules(square: SquarePolicies | None = None) -> list[dg.ScheduleDefinition]:
    """One schedule per distinct cron among the enabled Square policies."""
    square = square or policies().square
    every_object = [name for name, _ in square]
    names_by_cron: dict[str, list[str]] = defaultdict(list)
    policies_by_cron: dict[str, list[SyncPolicy]] = defaultdict(list)
    for name, policy in square:
        if policy.enabled and policy.cron:
            names_by_cron[policy.cron].append(name)
            policies_by_cron[policy.cron].append(policy)
    schedules = []
    for cron, names in names_by_cron.items():
        keys = [dg.AssetKey(["square", name]) for name in names]
        schedules.append(
            background_schedule(
                name=schedule_name(names, every_object),
                target=dg.AssetSelection.assets(*keys),
                cron_schedule=cron,
                execution_timezone=sync_timezone(),
                default_status=default_status(),
                # Room for the steps' retries in the run, and Dagster's run retries (a dead worker).
                tags={
                    **max_runtime_tags(*policies_by_cron[cron], step_retries=policies().retries),
                    **run_retry_tags(policies().retries),
                },
                description=(
                    f"Syncs {', '.join(key.to_user_string() for key in keys)} at `{cron}` in "
                    f"{sync_timezone()} (policies.yaml `cron`, SYNC_TIMEZONE)."
                ),
            )
        )
    return schedules

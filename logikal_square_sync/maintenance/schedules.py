"""When the run purge runs: retention.cron of policies.yaml."""

from __future__ import annotations

import dagster as dg

from logikal_square_sync.maintenance.jobs import PURGE_JOB
from logikal_square_sync.orchestration.settings import default_status, sync_timezone
from logikal_square_sync.policies import RetentionPolicy, policies

PURGE_SCHEDULE = "dagster_history_purge_schedule"


def maintenance_schedules(retention: RetentionPolicy | None = None) -> list[dg.ScheduleDefinition]:
    retention = retention or policies().retention
    if not retention.enabled:
        return []
    try:
        schedule = dg.ScheduleDefinition(
            name=PURGE_SCHEDULE,
            job_name=PURGE_JOB,
            cron_schedule=retention.cron,
            execution_timezone=sync_timezone(),
            # Starts with the other background work (BACKGROUND_SYNC_ENABLED), so an instance meant
            # to be quiet (a test, a staging copy) launches nothing by itself. It is housekeeping,
            # not a sync: started in the UI, it runs whatever the switch says.
            default_status=default_status(),
            description=(
                f"Purges runs older than {retention.runs_days} days with their event logs and compute "
                f"logs, at most {retention.max_runs_per_tick} per run, at `{retention.cron}` in "
                f"{sync_timezone()} (policies.yaml `retention`)."
            ),
        )
    except dg.DagsterInvalidDefinitionError as error:
        raise ValueError(
            f"policies: retention.cron {retention.cron!r} is not a valid cron: {error}"
        ) from None
    return [schedule]

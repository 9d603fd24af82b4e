"""The project-sync sensors: queue the projects that are due (`engine/syncs/project_selection`).

`logikal_project_sync_sensor` (every `tick_seconds` of policies.yaml `logikal.project_sync`)
queues everything due, retries after the failure backoff included, and records the freshness check.
`logikal_new_project_sensor` (every `new_project_tick_seconds`) queues only the first sync of
projects that logikal/projects just discovered, so it starts soon and not at the big sensor's
next tick; it never retries (a failed first sync is the big
sensor's, with its backoff). Its run_key per project keeps it from requesting
a first sync twice; both sensors skip projects already queued or running.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.logikal.checks import evaluation, readable_evaluation
from logikal_square_sync.logikal.engine.syncs.project_selection import (
    NEW,
    due_projects,
    duration,
    load_project_states,
    name_unfetched,
    staleness,
    windows,
)
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME, logikal_projects_partitions
from logikal_square_sync.orchestration.background_switch import SKIP_MESSAGE, background_only
from logikal_square_sync.orchestration.settings import background_sync_enabled, default_sensor_status
from logikal_square_sync.policies import ProjectSyncRules, policies
from logikal_square_sync.warehouse.resource import WarehouseResource

SENSOR_NAME = "logikal_project_sync_sensor"
NEW_PROJECT_SENSOR_NAME = "logikal_new_project_sensor"
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def in_flight_projects(instance: dg.DagsterInstance) -> set[str]:
    """Projects with a run queued or running: from this job, the UI's materialize button or a command."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED))
    return {run.tags["dagster/partition"] for run in runs if "dagster/partition" in run.tags}


def evaluate_project_sync(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    policy: ProjectSyncRules,
    now: datetime | None = None,
) -> dg.SensorResult:
    now = now or utc_now()
    with warehouse.engine.connect() as conn:
        states = load_project_states(conn)
        report = name_unfetched(conn, staleness(states, now, policy))
    if not background_sync_enabled():
        # Nothing is queued, but the checks still say how stale the projects are getting: with the
        # syncs off for long, the staleness alerts (alert sensors keep running) must still fire.
        return dg.SensorResult(
            skip_reason=SKIP_MESSAGE,
            asset_events=[evaluation(report), readable_evaluation(warehouse.engine)],
        )
    due = due_projects(states, now, policy, in_flight=in_flight_projects(context.instance))
    existing = set(context.instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))
    missing = sorted({state.id for state in states} - existing)
    if due:
        context.log.info(
            f"Queueing {len(due)} LogiKal project sync(s): {', '.join(sorted({d.reason for d in due}))}"
        )
    retries = sorted(at for st in states if (at := st.retry_at(policy)) is not None and now < at)
    if retries:
        context.log.info(
            f"{len(retries)} failing LogiKal project(s) wait for their backoff, "
            f"the first until {retries[0]:%H:%M} UTC"
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=project.id,
                tags={"dagster/priority": str(project.priority), "logikal/sync_reason": project.reason},
            )
            for project in due
        ],
        dynamic_partitions_requests=[logikal_projects_partitions.build_add_request(missing)]
        if missing
        else None,
        asset_events=[evaluation(report), readable_evaluation(warehouse.engine)],
    )


def _partition_requests(context: dg.SensorEvaluationContext, project_ids: set[str]) -> list | None:
    existing = set(context.instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))
    missing = sorted(project_ids - existing)
    return [logikal_projects_partitions.build_add_request(missing)] if missing else None


def evaluate_new_projects(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    policy: ProjectSyncRules,
    now: datetime | None = None,
) -> dg.SensorResult | dg.SkipReason:
    """First syncs of never-synced projects that have not failed yet (failed ones wait for their backoff)."""
    now = now or utc_now()
    with warehouse.engine.connect() as conn:
        states = [s for s in load_project_states(conn, never_synced_only=True) if not s.failures]
    due = [
        d
        for d in due_projects(states, now, policy, in_flight=in_flight_projects(context.instance))
        if d.reason == NEW
    ]
    if not due:
        return dg.SkipReason("no newly discovered LogiKal project waits for its first sync")
    context.log.info(f"Queueing the first sync of {len(due)} new LogiKal project(s)")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"first-sync:{project.id}",
                partition_key=project.id,
                tags={"dagster/priority": str(project.priority), "logikal/sync_reason": project.reason},
            )
            for project in due
        ],
        dynamic_partitions_requests=_partition_requests(context, {d.id for d in due}),
    )


def sensor_description(policy: ProjectSyncRules) -> str:
    """What the UI shows for the sensor, written from the policy in force (policies.yaml)."""
    return (
        f"Queues `{logikal_project_sync.name}` for the LogiKal projects due now, most urgent first: "
        f"new and changed projects, then active ones last synced more than {duration(policy.interval)} "
        f"ago, then a sweep of the rest every {duration(policy.sweep_every)}. {windows(policy)} At most "
        f"{policy.max_runs_per_tick} runs per tick of {policy.tick_seconds} s, never a project already "
        "queued or running; background runs carry a negative `dagster/priority`, so force syncs jump the "
        "queue. Each tick also records the per-project freshness check and `parts_lists_readable`. "
        "Values from policies.yaml `logikal.project_sync`."
    )


def new_project_sensor_description(policy: ProjectSyncRules) -> str:
    """What the UI shows for the new-project sensor, from the policy in force."""
    return (
        f"Queues the first `{logikal_project_sync.name}` run of each project `logikal/projects` "
        f"discovered, within {policy.new_project_tick_seconds} s, instead of at the next "
        f"{policy.tick_seconds} s tick of `{SENSOR_NAME}`. Looks only at never-synced projects that "
        "have not failed (one cheap query); retries, with their failure backoff, stay with "
        f"`{SENSOR_NAME}`. One request per project (run key `first-sync:<id>`), never while one is "
        "queued or running. Values from policies.yaml `logikal.project_sync`."
    )


def _project_sync_sensor(
    name: str, tick_seconds: int, description: str
) -> Callable[[Callable[..., Any]], dg.SensorDefinition]:
    """A sensor queueing `logikal_project_sync` every `tick_seconds`, on or off as the switch says."""
    return dg.sensor(
        name=name,
        job=logikal_project_sync,
        minimum_interval_seconds=tick_seconds,
        default_status=default_sensor_status(),
        description=description,
    )


def logikal_sensors() -> list[dg.SensorDefinition]:
    """The project-sync sensor, unless phases, elevations and parts lists are all disabled.

    Built on call, so its default status follows BACKGROUND_SYNC_ENABLED as it is then.
    """
    logikal = policies().logikal
    if not (logikal.phases.enabled or logikal.elevations.enabled or logikal.parts_lists.enabled):
        return []
    policy = logikal.project_sync

    @_project_sync_sensor(SENSOR_NAME, policy.tick_seconds, sensor_description(policy))
    # Not `background_only`: switched off, it still records its checks (evaluate_project_sync).
    def logikal_project_sync_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult:
        return evaluate_project_sync(context, warehouse, policy)

    @_project_sync_sensor(
        NEW_PROJECT_SENSOR_NAME, policy.new_project_tick_seconds, new_project_sensor_description(policy)
    )
    @background_only
    def logikal_new_project_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        return evaluate_new_projects(context, warehouse, policy)

    return [logikal_project_sync_sensor, logikal_new_project_sensor]

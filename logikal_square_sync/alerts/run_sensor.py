"""`alert_on_run_failure`: one alert when an asset or project starts failing, one when it recovers.

A plain sensor rather than Dagster's `run_failure_sensor`, because an episode
needs the successes too and state across runs (`run_episodes`), which that
sensor's own cursor cannot hold.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.alerts import heartbeat
from logikal_square_sync.alerts.deadline import Deadline
from logikal_square_sync.alerts.messages import RunContext, run_failure_alert, run_recovery_alert
from logikal_square_sync.alerts.notifiers import Alert
from logikal_square_sync.alerts.outbox import deliver
from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.alerts.retry_decision import RetryDecision, retry_decision
from logikal_square_sync.alerts.run_episodes import RunCursor, episode_keys
from logikal_square_sync.common.clock import Clock, utc_now
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync.warehouse.tables import logikal_projects

RUN_FAILURE_SENSOR_NAME = "alert_on_run_failure"
_BATCH = 200
# The longest a tick waits for the warehouse to name LogiKal projects before naming them by GUID.
_NAME_LOOKUP_SECONDS = 5.0

RUN_FAILURE_DESCRIPTION = """Alerts when an asset or a LogiKal project starts failing, and when it recovers.

One alert per failure episode of each asset (and project partition): the first
failed run alerts, the ones after it only count, and the next successful run
sends one "Recovered" message. Each alert names the assets, the LogiKal project
by name, what started the run (schedule, sensor, force sync, a person), the
failed steps with the first lines of their errors, what to check for that kind
of error, the runbook section and a link to the run. A failed run Dagster
retries (dagster/will_retry) is not alerted; its last retry is. Alerts a
channel does not take in time wait in the sensor's outbox and go out on a
later tick. Each tick pings LSS_HEARTBEAT_URL when set. Runs even when
BACKGROUND_SYNC_ENABLED is false; skips when no alert channel is set up
(SLACK_WEBHOOK_URL, or ALERT_EMAIL_TO and SMTP_HOST)."""


def planned_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[dg.AssetKey]:
    """The assets a run set out to materialize; a run of a whole asset job has no `asset_selection`."""
    if run.asset_selection:
        return sorted(run.asset_selection, key=str)
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=100
    ).records
    keys = {
        record.event_log_entry.dagster_event.asset_key
        for record in records
        if record.event_log_entry.dagster_event and record.event_log_entry.dagster_event.asset_key
    }
    return sorted(keys, key=str)


def _events(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> list[dg.DagsterEvent]:
    records = instance.get_records_for_run(run_id, of_type=kind, limit=50).records
    return [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]


def project_names_within(
    warehouse: WarehouseResource, partitions: Collection[str], deadline: Deadline
) -> dict[str, str]:
    """`project_names`, given up after a part of the tick's time: a warehouse that hangs (the very
    failure being alerted, maybe) must not hold the alert; it then names projects by GUID.

    A thread, because neither SQLAlchemy nor the drivers bound a whole connect-and-query; a
    daemon thread left waiting costs one pooled connection at most.
    """
    if not partitions:
        return {}
    found: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: found.update(project_names(warehouse, partitions)), name="alert-names", daemon=True
    )
    thread.start()
    # At most a third of the time left: the rest is for sending.
    thread.join(min(_NAME_LOOKUP_SECONDS, deadline.remaining() / 3))
    return dict(found) if not thread.is_alive() else {}


def project_names(warehouse: WarehouseResource, partitions: Collection[str]) -> dict[str, str]:
    """LogiKal project names by GUID; {} when the warehouse cannot say (it may be why the run failed)."""
    if not partitions:
        return {}
    try:
        with warehouse.engine.connect() as conn:
            rows = conn.execute(
                sa.select(logikal_projects.c.id, logikal_projects.c.name).where(
                    logikal_projects.c.id.in_(sorted(partitions))
                )
            )
            return {row.id: row.name for row in rows}
    except Exception:  # any failure (connecting, migrating, querying) only costs the names
        return {}


def _alert_for(
    instance: dg.DagsterInstance,
    record: dg.RunRecord,
    cursor: RunCursor,
    alerts: AlertsResource,
    context: RunContext,
) -> Alert | None:
    """Applies one finished run to `cursor`; the alert it calls for, if any."""
    run = record.dagster_run
    assets = planned_assets(instance, run)
    keys = episode_keys(run, assets)
    finished = record.end_time or record.update_timestamp.timestamp()
    if run.status == dg.DagsterRunStatus.FAILURE:
        if not cursor.failed(keys, run.run_id, finished):
            return None
        failure = _events(instance, run.run_id, dg.DagsterEventType.RUN_FAILURE)
        steps = _events(instance, run.run_id, dg.DagsterEventType.STEP_FAILURE)
        return run_failure_alert(run, failure[0] if failure else None, steps, alerts.link, assets, context)
    ended = cursor.succeeded(keys)
    if not ended:
        return None
    since = datetime.fromtimestamp(min(episode.since for episode in ended.values()), UTC)
    failures = max(episode.failures for episode in ended.values())
    return run_recovery_alert(run, assets, since, failures, alerts.link, context)


def _settled(
    instance: dg.DagsterInstance, records: list[dg.RunRecord], cursor: RunCursor, now: float
) -> tuple[list[dg.RunRecord], int]:
    """The runs whose outcome is the last word, oldest first; a failure Dagster retries is left out.

    A failure without Dagster's retry decision yet waits in `cursor.waiting` and is
    looked at again on the next ticks, for at most retry_decision_wait_seconds.
    """
    wait = policies().alerts.retry_decision_wait_seconds
    settled = []
    for record in records:
        run_id = record.dagster_run.run_id
        decision = retry_decision(instance, record.dagster_run)
        if decision == RetryDecision.PENDING and now - cursor.waiting.setdefault(run_id, now) < wait:
            continue
        cursor.waiting.pop(run_id, None)
        if decision != RetryDecision.RETRIED:
            settled.append(record)
    return settled, len(cursor.waiting)


def build_run_failure_sensor(
    *, clock: Clock = utc_now, name: str = RUN_FAILURE_SENSOR_NAME
) -> dg.SensorDefinition:
    def evaluate(
        context: dg.SensorEvaluationContext, alerts: AlertsResource, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        deadline = Deadline.after(policies().alerts.delivery_deadline_seconds)
        off = alerts.off_reason()
        if off:
            return dg.SkipReason(off)
        cursor = RunCursor.parse(context.cursor)
        if cursor.after is None:
            # First tick: alert on what happens from now on, not on history.
            cursor.after = clock().timestamp()
            return dg.SensorResult(skip_reason="Watching runs from now on.", cursor=cursor.dump())
        records = context.instance.get_run_records(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                updated_after=datetime.fromtimestamp(cursor.after, UTC),
            ),
            order_by="update_timestamp",
            ascending=True,
            limit=_BATCH,
        )
        # The filter is strict ('after'), but runs updated in the same instant may come again: skip them.
        handled = set(cursor.handled)
        new = [r for r in records if r.dagster_run.run_id not in handled]
        for record in new:
            cursor.mark_handled(record.dagster_run.run_id, record.update_timestamp.timestamp())
        # Failures seen before without Dagster's retry decision: read again, with their tags as they are now.
        waiting = [run_id for run_id in cursor.waiting if run_id not in {r.dagster_run.run_id for r in new}]
        again = (
            list(context.instance.get_run_records(filters=dg.RunsFilter(run_ids=waiting))) if waiting else []
        )
        for run_id in set(waiting) - {r.dagster_run.run_id for r in again}:
            cursor.waiting.pop(run_id)  # deleted meanwhile: nothing left to alert on
        settled, undecided = _settled(
            context.instance,
            sorted(again + new, key=lambda r: r.update_timestamp),
            cursor,
            clock().timestamp(),
        )

        partitions = {p for r in settled if (p := r.dagster_run.tags.get("dagster/partition"))}
        run_context = RunContext(project_names_within(warehouse, partitions, deadline), alerts.runbook_url)
        notifiers = alerts.notifiers()
        channels = [notifier.name for notifier in notifiers]
        for record in settled:
            alert = _alert_for(context.instance, record, cursor, alerts, run_context)
            if alert is not None:
                cursor.outbox.add(alert, channels, clock().timestamp(), policies().alerts.outbox_max_alerts)
        report = deliver(cursor.outbox, notifiers, deadline, context.log)

        failing = ", ".join(sorted(cursor.failing)) or "none"
        summary = report.describe() or "No new failure or recovery."
        if undecided:
            summary += f" {undecided} failed run(s) waiting for Dagster's retry decision."
        return dg.SensorResult(skip_reason=f"{summary} Failing now: {failing}.", cursor=cursor.dump())

    @dg.sensor(
        name=name,
        description=RUN_FAILURE_DESCRIPTION,
        minimum_interval_seconds=policies().alerts.run_failure_tick_seconds,
        # Alerts never follow the master switch: a failure during maintenance must still reach someone.
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _run_failure_sensor(
        context: dg.SensorEvaluationContext, alerts: AlertsResource, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        result = evaluate(context, alerts, warehouse)
        heartbeat.ping(alerts.heartbeat_url, name, policies().alerts.heartbeat_timeout_seconds, context.log)
        return result

    return _run_failure_sensor


alert_on_run_failure = build_run_failure_sensor()

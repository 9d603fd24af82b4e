"""Alert sensors: every failed run, and assets going stale or checks starting to fail."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import dagster as dg

from logikal_square_sync.alerts.check_states import CheckState, latest_check_outcomes, needs_check_alert
from logikal_square_sync.alerts.freshness import (
    FreshnessState,
    FreshnessWindows,
    freshness_state,
    needs_alert,
    policy_windows,
)
from logikal_square_sync.alerts.messages import (
    FreshnessChange,
    check_alert,
    freshness_alert,
    run_failure_alert,
)
from logikal_square_sync.alerts.notifiers import Alert, AlertDeliveryError
from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.clock import Clock, utc_now
from logikal_square_sync.settings import default_sensor_status

_State = TypeVar("_State", FreshnessState, CheckState)

STALE_ASSETS_SENSOR_NAME = "alert_on_stale_assets"
STALE_ASSETS_TICK_SECONDS = 180

# The sensor decorators do not read docstrings; these texts are what the UI shows.
RUN_FAILURE_DESCRIPTION = """Sends a Slack message and/or e-mail for every failed run of this code location.

Names the job (or the assets), the run id, the LogiKal project GUID of a
partitioned run, the failed steps with the first lines of their errors, and
links to the run in the Dagster UI. Skips when no alert channel is set up
(SLACK_WEBHOOK_URL, or ALERT_EMAIL_TO and SMTP_HOST)."""

STALE_ASSETS_DESCRIPTION = """Alerts when a synced asset goes stale or a check fails with ERROR severity.

Every few minutes it compares each unpartitioned asset's last materialization
with the warn/fail windows of policies.yaml (FRESH, WARN, FAIL,
NEVER_MATERIALIZED) and reads the latest result of every asset check (e.g.
`orders_complete`, which names missing orders; `project_contents_fresh`, which
names stale LogiKal projects). It alerts on changes only, into WARN or FAIL and
back to FRESH, so a stale asset gives one message, not one per tick.
Built-in freshness alerts are a paid Dagster+ feature; this sensor is their
open-source stand-in."""


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    description=RUN_FAILURE_DESCRIPTION,
    minimum_interval_seconds=30,
    default_status=default_sensor_status(),
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> dg.SkipReason | None:
    """Alerts on one failed run (see RUN_FAILURE_DESCRIPTION)."""
    off = alerts.off_reason()
    if off:
        return dg.SkipReason(off)
    run = context.dagster_run
    alert = run_failure_alert(
        run,
        context.failure_event,
        context.get_step_failure_events(),
        alerts.link,
        assets=sorted(run.asset_selection or _planned_assets(context.instance, run.run_id), key=str),
    )
    delivery = alerts.send_all(alert, context.log)
    if not delivery.delivered:
        # Raising marks the tick failed in the UI and on the run: nobody was told, so it must show.
        raise AlertDeliveryError(
            f"Alert for failed run {context.dagster_run.run_id} not delivered: {delivery.describe()}"
        )
    return None


def _planned_assets(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run set out to materialize; a run of a whole asset job has no `asset_selection`."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=100
    ).records
    return {
        record.event_log_entry.dagster_event.asset_key
        for record in records
        if record.event_log_entry.dagster_event and record.event_log_entry.dagster_event.asset_key
    }


@dataclass
class _Cursor:
    """Last seen states, so an asset that stays stale for a day gives one alert, not one per tick."""

    assets: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> "_Cursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(assets=dict(data.get("assets", {})), checks=dict(data.get("checks", {})))
        except (ValueError, AttributeError, TypeError):
            # An unreadable cursor costs at most one repeated alert per stale asset; never a crash loop.
            return cls()

    def dump(self) -> str:
        return json.dumps({"assets": self.assets, "checks": self.checks}, sort_keys=True)


@dataclass
class _Pending:
    alert: Alert
    asset_keys: list[str] = field(default_factory=list)
    check_keys: list[str] = field(default_factory=list)


def _last_materialized(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]
) -> dict[dg.AssetKey, datetime | None]:
    events = instance.get_latest_materialization_events(keys)
    return {
        key: datetime.fromtimestamp(events[key].timestamp, UTC) if events.get(key) else None for key in keys
    }


def build_stale_assets_sensor(
    windows: Mapping[dg.AssetKey, FreshnessWindows],
    *,
    check_keys: Sequence[dg.AssetCheckKey] | None = None,
    clock: Clock = utc_now,
    name: str = STALE_ASSETS_SENSOR_NAME,
    minimum_interval_seconds: int = STALE_ASSETS_TICK_SECONDS,
    default_status: dg.DefaultSensorStatus | None = None,
) -> dg.SensorDefinition:
    """The staleness sensor for `windows` (asset key -> warn/fail windows).

    `check_keys` None watches every asset check of the code location; tests
    pass their own keys, tiny windows and a fake `clock`.
    """

    @dg.sensor(
        name=name,
        description=STALE_ASSETS_DESCRIPTION,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status or default_sensor_status(),
    )
    def _stale_assets_sensor(
        context: dg.SensorEvaluationContext, alerts: AlertsResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Open-source stand-in for Dagster+ freshness alerts (see STALE_ASSETS_DESCRIPTION)."""
        off = alerts.off_reason()
        if off:
            return dg.SkipReason(off)
        now = clock()
        previous = _Cursor.parse(context.cursor)
        current = _Cursor()
        pending: list[_Pending] = []

        last = _last_materialized(context.instance, list(windows))
        changes = []
        for key, window in windows.items():
            label = key.to_user_string()
            state = freshness_state(last[key], window.warn, window.fail, now)
            current.assets[label] = state.value
            before_state = _as_state(FreshnessState, previous.assets.get(label))
            if needs_alert(before_state, state):
                changes.append(FreshnessChange(key, before_state, state, last[key], window))
        if changes:
            pending.append(
                _Pending(
                    freshness_alert(changes, now, alerts.link),
                    asset_keys=[c.key.to_user_string() for c in changes],
                )
            )

        keys = check_keys if check_keys is not None else _all_check_keys(context)
        for key, outcome in latest_check_outcomes(context.instance, keys).items():
            label = key.to_user_string()
            current.checks[label] = outcome.state.value
            if needs_check_alert(_as_state(CheckState, previous.checks.get(label)), outcome.state):
                failed = outcome.state == CheckState.FAILED
                alert = check_alert(key, failed, outcome.description, outcome.run_id, alerts.link)
                pending.append(_Pending(alert, check_keys=[label]))

        sent, undelivered = [], []
        for item in pending:
            delivery = alerts.send_all(item.alert, context.log)
            if delivery.delivered:
                sent.append(f"'{item.alert.title}' ({delivery.describe()})")
                continue
            undelivered.append(f"'{item.alert.title}' ({delivery.describe()})")
            # Keep the old state so the next tick tries this alert again.
            _restore(current.assets, previous.assets, item.asset_keys)
            _restore(current.checks, previous.checks, item.check_keys)
        if undelivered and not sent:
            # Nothing went out: fail the tick (visible in the UI); its cursor is not saved, so it retries.
            raise AlertDeliveryError(f"No alert delivered: {'; '.join(undelivered)}")
        summary = _summary(current, sent, undelivered)
        if undelivered:
            context.log.error(f"Alerts not delivered, retrying next tick: {'; '.join(undelivered)}")
        return dg.SensorResult(skip_reason=summary, cursor=current.dump())

    return _stale_assets_sensor


def _as_state(kind: type[_State], value: str | None) -> _State | None:
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return None


def _restore(current: dict[str, str], previous: dict[str, str], keys: list[str]) -> None:
    for key in keys:
        if key in previous:
            current[key] = previous[key]
        else:
            current.pop(key, None)


def _all_check_keys(context: dg.SensorEvaluationContext) -> list[dg.AssetCheckKey]:
    repository = context.repository_def
    return sorted(repository.asset_graph.asset_check_keys, key=str) if repository else []


def _summary(current: _Cursor, sent: list[str], undelivered: list[str]) -> str:
    stale = sorted(k for k, v in current.assets.items() if v != FreshnessState.FRESH)
    failing = sorted(k for k, v in current.checks.items() if v == CheckState.FAILED)
    parts = [f"Sent {'; '.join(sent)}" if sent else "No change, nothing sent"]
    if undelivered:
        parts.append(f"not delivered (retrying): {'; '.join(undelivered)}")
    parts.append(f"stale: {', '.join(stale) or 'none'}")
    parts.append(f"failing checks: {', '.join(failing) or 'none'}")
    return ". ".join(parts) + "."


alert_on_stale_assets = build_stale_assets_sensor(policy_windows())

"""`alert_on_stale_assets`: assets going stale as Dagster judges them, and checks starting to fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import dagster as dg

from logikal_square_sync.alerts import heartbeat
from logikal_square_sync.alerts.check_states import CheckState, latest_check_outcomes, needs_check_alert
from logikal_square_sync.alerts.cursor import SensorCursor
from logikal_square_sync.alerts.deadline import Deadline
from logikal_square_sync.alerts.freshness import AlertState, alert_state, needs_alert
from logikal_square_sync.alerts.messages import FreshnessChange, check_alert, freshness_alert
from logikal_square_sync.alerts.notifiers import Alert
from logikal_square_sync.alerts.outbox import DeliveryReport, Outbox, deliver
from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.common.clock import Clock, utc_now
from logikal_square_sync.policies import policies

_State = TypeVar("_State", AlertState, CheckState)

STALE_ASSETS_SENSOR_NAME = "alert_on_stale_assets"

# The sensor decorators do not read docstrings; this text is what the UI shows.
STALE_ASSETS_DESCRIPTION = """Alerts when a synced asset goes stale or a check fails with ERROR severity.

Each tick (alerts.stale_assets_tick_seconds of policies.yaml) it reads the
freshness state Dagster's own freshness daemon computed for each asset from its
freshness policy (the state the UI's badges show: PASS, WARN, FAIL) and the
latest result of every asset check (e.g.
`orders_complete`, which names missing orders; `project_contents_fresh`, which
names stale LogiKal projects). It alerts on changes only, into WARN or FAIL and
back to fresh, so a stale asset gives one message, not one per tick. An asset
never materialized is quiet until its first deadline after deployment has
passed. Alerts a channel does not take in time wait in the sensor's outbox and
go out on a later tick. Each tick pings LSS_HEARTBEAT_URL when set. Runs even
when BACKGROUND_SYNC_ENABLED is false. Built-in freshness alerts are a paid
Dagster+ feature; this sensor is their open-source stand-in."""


@dataclass
class _Cursor(SensorCursor):
    """Last seen states, so an asset that stays stale for a day gives one alert, not one per tick."""

    assets: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)  # when this sensor first saw each asset
    outbox: Outbox = field(default_factory=Outbox)

    @classmethod
    def from_json(cls, data: dict[str, Any], outbox: Outbox) -> _Cursor:
        return cls(
            assets=dict(data.get("assets", {})),
            checks=dict(data.get("checks", {})),
            first_seen={k: float(v) for k, v in data.get("first_seen", {}).items()},
            outbox=outbox,
        )

    def to_json(self) -> dict[str, Any]:
        return {"assets": self.assets, "checks": self.checks, "first_seen": self.first_seen}


def _policies(context: dg.SensorEvaluationContext) -> dict[dg.AssetKey, dg.FreshnessPolicy]:
    repository = context.repository_def
    if repository is None:
        return {}
    graph = repository.asset_graph
    return {
        key: policy
        for key in sorted(graph.get_all_asset_keys(), key=str)
        if (policy := graph.get(key).freshness_policy) is not None
    }


def _last_materialized(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey]
) -> dict[dg.AssetKey, datetime | None]:
    latest = {
        record.asset_entry.asset_key: record.asset_entry.last_materialization
        for record in instance.get_asset_records(keys)
    }
    return {key: _timestamp(latest.get(key)) for key in keys}


def _timestamp(event: dg.EventLogEntry | None) -> datetime | None:
    return datetime.fromtimestamp(event.timestamp, UTC) if event is not None else None


def build_stale_assets_sensor(
    *,
    clock: Clock = utc_now,
    name: str = STALE_ASSETS_SENSOR_NAME,
    minimum_interval_seconds: int | None = None,
) -> dg.SensorDefinition:
    """The staleness sensor over every asset with a freshness policy and every check of the location."""

    def evaluate(
        context: dg.SensorEvaluationContext, alerts: AlertsResource
    ) -> dg.SensorResult | dg.SkipReason:
        deadline = Deadline.after(policies().alerts.delivery_deadline_seconds)
        off = alerts.off_reason()
        if off:
            return dg.SkipReason(off)
        now = clock()
        previous = _Cursor.parse(context.cursor)
        current = _Cursor(first_seen=dict(previous.first_seen), outbox=previous.outbox)
        new_alerts: list[Alert] = []

        freshness_policies = _policies(context)
        keys = list(freshness_policies)
        records = context.instance.get_freshness_state_records(keys) if keys else {}
        last = _last_materialized(context.instance, keys) if keys else {}
        changes = []
        for key, policy in freshness_policies.items():
            label = key.to_user_string()
            first_seen = datetime.fromtimestamp(current.first_seen.setdefault(label, now.timestamp()), UTC)
            state = alert_state(
                records.get(key), policy, materialized=last[key] is not None, first_seen=first_seen, now=now
            )
            current.assets[label] = state.value
            before = _as_state(AlertState, previous.assets.get(label))
            if needs_alert(before, state):
                changes.append(FreshnessChange(key, before, state, last[key], policy, first_seen))
        if changes:
            new_alerts.append(freshness_alert(changes, now, alerts.link, alerts.runbook_url))

        repository = context.repository_def
        check_keys = sorted(repository.asset_graph.asset_check_keys, key=str) if repository else []
        for check_key, outcome in latest_check_outcomes(context.instance, check_keys).items():
            label = check_key.to_user_string()
            current.checks[label] = outcome.state.value
            if needs_check_alert(_as_state(CheckState, previous.checks.get(label)), outcome.state):
                failed = outcome.state == CheckState.FAILED
                new_alerts.append(
                    check_alert(check_key, failed, outcome.description, outcome.run_id, alerts.link)
                )

        # The states move on now; an alert the channels do not take in this tick waits in the outbox.
        notifiers = alerts.notifiers()
        for alert in new_alerts:
            current.outbox.add(
                alert, [n.name for n in notifiers], now.timestamp(), policies().alerts.outbox_max_alerts
            )
        report = deliver(current.outbox, notifiers, deadline, context.log)
        return dg.SensorResult(skip_reason=_summary(current, report), cursor=current.dump())

    @dg.sensor(
        name=name,
        description=STALE_ASSETS_DESCRIPTION,
        minimum_interval_seconds=minimum_interval_seconds or policies().alerts.stale_assets_tick_seconds,
        # Alerts never follow the master switch: staleness during maintenance is exactly what to hear of.
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _stale_assets_sensor(
        context: dg.SensorEvaluationContext, alerts: AlertsResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Open-source stand-in for Dagster+ freshness alerts (see STALE_ASSETS_DESCRIPTION)."""
        result = evaluate(context, alerts)
        heartbeat.ping(alerts.heartbeat_url, name, policies().alerts.heartbeat_timeout_seconds, context.log)
        return result

    return _stale_assets_sensor


def _as_state(kind: type[_State], value: str | None) -> _State | None:
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return None


def _summary(current: _Cursor, report: DeliveryReport) -> str:
    stale = sorted(k for k, v in current.assets.items() if v not in (AlertState.FRESH, AlertState.PENDING))
    failing = sorted(k for k, v in current.checks.items() if v == CheckState.FAILED)
    parts = [report.describe() or "No change, nothing sent."]
    parts.append(f"stale: {', '.join(stale) or 'none'}.")
    parts.append(f"failing checks: {', '.join(failing) or 'none'}.")
    return " ".join(parts)


alert_on_stale_assets = build_stale_assets_sensor()

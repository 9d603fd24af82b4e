"""The wording of every alert: what failed or went stale, the first lines of the error, where to look."""

# No Dagster decorators in this module, so postponed annotations are safe here.
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    # Not exported by `dagster`; used only as a type.
    from dagster._utils.error import SerializableErrorInfo

from logikal_square_sync.alerts.freshness import FreshnessState, FreshnessWindows
from logikal_square_sync.alerts.notifiers import Alert, Severity

_ERROR_LINES = 6
# Dagster wraps every user exception in one of these; the wrapper's text says nothing new.
_FRAMEWORK_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}

Linker = Callable[[str], str | None]


def error_summary(error: SerializableErrorInfo | None, max_lines: int = _ERROR_LINES) -> str:
    """The first lines of an error and of its causes, without Dagster's own wrappers or stack traces."""
    chain: list[SerializableErrorInfo] = []
    while error is not None and len(chain) < 5:
        chain.append(error)
        error = error.cause
    useful = [e for e in chain if e.cls_name not in _FRAMEWORK_WRAPPERS] or chain
    lines: list[str] = []
    for index, item in enumerate(useful[:2]):
        message_lines = [line for line in item.message.strip().splitlines() if line.strip()]
        if index:
            message_lines[:1] = [f"caused by {line}" for line in message_lines[:1]]
        lines += message_lines[:max_lines]
    return "\n".join(lines)


def run_failure_alert(
    run: dg.DagsterRun,
    failure_event: dg.DagsterEvent,
    step_failures: Sequence[dg.DagsterEvent],
    link: Linker,
    assets: Sequence[dg.AssetKey] = (),
) -> Alert:
    """Job, run id, assets, partition, failed steps and the first lines of each error, linking to the run."""
    asset_names = ", ".join(sorted(key.to_user_string() for key in assets))
    # UI materializations run as an implicit job ("__ASSET_JOB"): its name says nothing, the assets do.
    implicit_job = run.job_name.startswith("__")
    what = asset_names if implicit_job and asset_names else run.job_name
    partition = run.tags.get("dagster/partition")
    lines = [f"Job: {run.job_name}", f"Run: {run.run_id}"]
    if asset_names:
        lines.append(f"Assets: {asset_names}")
    if partition:
        is_project = run.job_name.startswith("logikal") or any(key.path[0] == "logikal" for key in assets)
        lines.append(f"Partition: {partition}" + (" (LogiKal project GUID)" if is_project else ""))
    if step_failures:
        lines.append(f"Failed steps: {', '.join(event.step_key or '?' for event in step_failures)}")
        for event in step_failures[:3]:
            lines += ["", f"{event.step_key}:", _step_error(event)]
    else:
        # The run failed outside any step: launch failure, run worker lost, run-level error.
        error = getattr(failure_event.event_specific_data, "error", None)
        lines += ["", error_summary(error) or failure_event.message or "(no error message)"]
    title = f"Run failed: {what}" + (f" [{partition}]" if partition else "")
    return Alert(
        title=title, body="\n".join(lines), severity=Severity.ERROR, link=link(f"/runs/{run.run_id}")
    )


def _step_error(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    # A `dg.Failure` carries a description written for people; its exception text only repeats it.
    if data.user_failure_data and data.user_failure_data.description:
        return data.user_failure_data.description.strip()
    return error_summary(data.error) or event.message or "(no error message)"


@dataclass(frozen=True)
class FreshnessChange:
    key: dg.AssetKey
    previous: FreshnessState | None
    current: FreshnessState
    last_materialized_at: datetime | None
    windows: FreshnessWindows


def freshness_alert(changes: Sequence[FreshnessChange], now: datetime, link: Linker) -> Alert:
    """One message for all the freshness changes seen on one tick (a fresh deployment has several)."""
    stale = [c for c in changes if c.current != FreshnessState.FRESH]
    severity = (
        Severity.ERROR
        if any(c.current in (FreshnessState.FAIL, FreshnessState.NEVER_MATERIALIZED) for c in stale)
        else Severity.WARNING
        if stale
        else Severity.RESOLVED
    )
    names = ", ".join(c.key.to_user_string() for c in changes)
    if len(changes) == 1:
        title = f"{_headline(changes[0].current)}: {names}"
    else:
        title = f"Freshness changed for {len(changes)} assets: {names}"
    body = "\n".join(_freshness_line(c, now) for c in changes)
    only = changes[0].key if len(changes) == 1 else None
    path = f"/assets/{'/'.join(only.path)}" if only else "/assets"
    return Alert(title=title, body=body, severity=severity, link=link(path))


def _headline(state: FreshnessState) -> str:
    return {
        FreshnessState.FRESH: "Fresh again",
        FreshnessState.WARN: "Getting stale (WARN)",
        FreshnessState.FAIL: "Stale (FAIL)",
        FreshnessState.NEVER_MATERIALIZED: "Never materialized",
    }[state]


def _freshness_line(change: FreshnessChange, now: datetime) -> str:
    key = change.key.to_user_string()
    if change.last_materialized_at is None:
        return f"{key}: never materialized (expected within {_minutes(change.windows.fail)})"
    age = _minutes(now - change.last_materialized_at)
    was = f" (was {change.previous})" if change.previous else ""
    return (
        f"{key}: {change.current}{was}; last materialized {change.last_materialized_at:%Y-%m-%d %H:%M} UTC, "
        f"{age} ago; warn after {_minutes(change.windows.warn)}, fail after {_minutes(change.windows.fail)}"
    )


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 120 else f"{minutes} min"


def check_alert(
    key: dg.AssetCheckKey, failed: bool, description: str | None, run_id: str | None, link: Linker
) -> Alert:
    """An ERROR-severity check failure (or its recovery), with the check's own description."""
    name = key.to_user_string()
    asset_path = "/".join(key.asset_key.path)
    if failed:
        title, severity = f"Check failed: {name}", Severity.ERROR
        body = description or "The check failed with ERROR severity."
    else:
        title, severity = f"Check passing again: {name}", Severity.RESOLVED
        body = description or "The check no longer fails with ERROR severity."
    if run_id:
        body += f"\nRun: {run_id}"
    return Alert(title=title, body=body, severity=severity, link=link(f"/assets/{asset_path}?view=checks"))

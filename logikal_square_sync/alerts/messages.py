"""The wording of every alert: what failed or went stale, the first lines of the error, where to look."""

# No Dagster decorators in this module, so postponed annotations are safe here.
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    # Not exported by `dagster`; used only as a type.
    from dagster._utils.error import SerializableErrorInfo

from logikal_square_sync.alerts.freshness import STALE, AlertState, describe_policy, first_deadline
from logikal_square_sync.alerts.hints import Hint, hint_for
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


@dataclass(frozen=True)
class RunContext:
    """What a person knows a run by, beyond its id: project names, what started it, where to read on."""

    project_names: Mapping[str, str] = field(default_factory=dict)  # partition key -> LogiKal project name
    runbook_url: str | None = None  # LSS_RUNBOOK_URL: the runbook's address; else its path in the repository


def run_subject(run: dg.DagsterRun, assets: Sequence[dg.AssetKey], context: RunContext) -> str:
    """The assets (or the job), and the partition by its project name where it has one."""
    asset_names = ", ".join(sorted(key.to_user_string() for key in assets))
    # UI materializations run as an implicit job ("__ASSET_JOB"): its name says nothing, the assets do.
    what = asset_names if run.job_name.startswith("__") and asset_names else run.job_name
    partition = run.tags.get("dagster/partition")
    if partition:
        name = context.project_names.get(partition)
        what += f" [{name}]" if name else f" [{partition}]"
    return what


def trigger(run: dg.DagsterRun) -> str:
    """What launched a run, from the tags Dagster and our sensor set."""
    tags = run.tags
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        reason = tags.get("logikal/sync_reason")
        return f"sensor {tags['dagster/sensor_name']}" + (f" ({reason})" if reason else "")
    if tags.get("logikal/sync_reason") == "force_sync":
        return "a force sync (lss-force-sync or an ERP button)"
    if "dagster/backfill" in tags:
        return f"backfill {tags['dagster/backfill']}"
    return "a person, in the Dagster UI or from a shell"


def run_failure_alert(
    run: dg.DagsterRun,
    failure_event: dg.DagsterEvent | None,
    step_failures: Sequence[dg.DagsterEvent],
    link: Linker,
    assets: Sequence[dg.AssetKey] = (),
    context: RunContext | None = None,
) -> Alert:
    """What failed (assets, project), what started it, the first lines of each error, what to check."""
    context = context or RunContext()
    asset_names = ", ".join(sorted(key.to_user_string() for key in assets))
    partition = run.tags.get("dagster/partition")
    lines = [f"Job: {run.job_name}", f"Run: {run.run_id}", f"Started by: {trigger(run)}"]
    if asset_names:
        lines.append(f"Assets: {asset_names}")
    if partition:
        is_project = run.job_name.startswith("logikal") or any(key.path[0] == "logikal" for key in assets)
        name = context.project_names.get(partition)
        if is_project:
            lines.append(f"LogiKal project: {name + ' ' if name else ''}(GUID {partition})")
        else:
            lines.append(f"Partition: {partition}")
    errors: list[str] = []
    if step_failures:
        lines.append(f"Failed steps: {', '.join(event.step_key or '?' for event in step_failures)}")
        for event in step_failures[:3]:
            errors.append(_step_error(event))
            lines += ["", f"{event.step_key}:", errors[-1]]
    else:
        # The run failed outside any step: launch failure, run worker lost, run-level error.
        error = getattr(failure_event.event_specific_data, "error", None) if failure_event else None
        message = failure_event.message if failure_event else None
        errors.append(error_summary(error) or message or "(no error message)")
        lines += ["", errors[-1]]
    source = _source_of(run, assets)
    hint = hint_for("\n".join(errors), source)
    lines += ["", f"What to check ({hint.kind}): {hint.advice}"]
    lines.append(f"Runbook: {hint.runbook(context.runbook_url)}")
    return Alert(
        title=f"Run failed: {run_subject(run, assets, context)}",
        body="\n".join(lines),
        severity=Severity.ERROR,
        link=link(f"/runs/{run.run_id}"),
    )


def run_recovery_alert(
    run: dg.DagsterRun,
    assets: Sequence[dg.AssetKey],
    failed_since: datetime,
    failures: int,
    link: Linker,
    context: RunContext | None = None,
) -> Alert:
    """The end of a failure episode: the first successful run after `failures` failed ones."""
    context = context or RunContext()
    lines = [
        f"Run {run.run_id} succeeded (started by {trigger(run)}) after {failures} failed run(s) since "
        f"{failed_since:%Y-%m-%d %H:%M} UTC."
    ]
    return Alert(
        title=f"Recovered: {run_subject(run, assets, context)}",
        body="\n".join(lines),
        severity=Severity.RESOLVED,
        link=link(f"/runs/{run.run_id}"),
    )


def _source_of(run: dg.DagsterRun, assets: Sequence[dg.AssetKey]) -> str | None:
    sources = {key.path[0] for key in assets} or {run.job_name.split("_")[0]}
    return next(iter(sources)) if len(sources) == 1 and sources <= {"square", "logikal"} else None


def _step_error(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    # A `dg.Failure` carries a description written for people; its exception text only repeats it.
    if data.user_failure_data and data.user_failure_data.description:
        return data.user_failure_data.description.strip()
    return error_summary(data.error) or event.message or "(no error message)"


@dataclass(frozen=True)
class FreshnessChange:
    key: dg.AssetKey
    previous: AlertState | None
    current: AlertState
    last_materialized_at: datetime | None
    policy: dg.FreshnessPolicy
    first_seen: datetime


def freshness_alert(
    changes: Sequence[FreshnessChange], now: datetime, link: Linker, runbook_url: str | None = None
) -> Alert:
    """One message for all the freshness changes seen on one tick (a fresh deployment has several)."""
    stale = [c for c in changes if c.current in STALE]
    severity = (
        Severity.ERROR
        if any(c.current in (AlertState.FAIL, AlertState.NEVER_MATERIALIZED) for c in stale)
        else Severity.WARNING
        if stale
        else Severity.RESOLVED
    )
    names = ", ".join(c.key.to_user_string() for c in changes)
    if len(changes) == 1:
        title = f"{_headline(changes[0].current)}: {names}"
    else:
        title = f"Freshness changed for {len(changes)} assets: {names}"
    lines = [_freshness_line(c, now) for c in changes]
    if stale:
        hint = Hint("stale data", "", "stale-data")
        lines += [
            "",
            "What to check: did its schedule or sensor run (Automation page), did the run fail (Runs), "
            "is BACKGROUND_SYNC_ENABLED false?",
            f"Runbook: {hint.runbook(runbook_url)}",
        ]
    only = changes[0].key if len(changes) == 1 else None
    path = f"/assets/{'/'.join(only.path)}" if only else "/assets"
    return Alert(title=title, body="\n".join(lines), severity=severity, link=link(path))


def _headline(state: AlertState) -> str:
    return {
        AlertState.FRESH: "Fresh again",
        AlertState.WARN: "Getting stale (WARN)",
        AlertState.FAIL: "Stale (FAIL)",
        AlertState.NEVER_MATERIALIZED: "Never materialized",
        AlertState.PENDING: "Not due yet",
    }[state]


def _freshness_line(change: FreshnessChange, now: datetime) -> str:
    key, rule = change.key.to_user_string(), describe_policy(change.policy)
    if change.last_materialized_at is None:
        due = first_deadline(change.policy, change.first_seen)
        return (
            f"{key}: never materialized since it was deployed ({change.first_seen:%Y-%m-%d %H:%M} UTC); "
            f"it was due by {due:%Y-%m-%d %H:%M} UTC ({rule})"
        )
    age = _minutes(now - change.last_materialized_at)
    was = f" (was {change.previous})" if change.previous and change.previous != AlertState.PENDING else ""
    return (
        f"{key}: {change.current}{was}; last materialized {change.last_materialized_at:%Y-%m-%d %H:%M} UTC, "
        f"{age} ago; {rule}"
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

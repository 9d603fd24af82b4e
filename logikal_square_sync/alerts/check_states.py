"""The latest completed result of each asset check, reduced to the states the alerts care about."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import dagster as dg


class CheckState(StrEnum):
    PASSED = "PASSED"
    WARNED = "WARNED"  # failed with WARN severity: visible in the UI, not worth waking anyone
    FAILED = "FAILED"  # failed with ERROR severity
    NOT_RUN = "NOT_RUN"


@dataclass(frozen=True)
class CheckOutcome:
    key: dg.AssetCheckKey
    state: CheckState
    description: str | None = None
    run_id: str | None = None


def needs_check_alert(previous: CheckState | None, current: CheckState) -> bool:
    """Alert when a check starts failing with ERROR severity, and when it stops."""
    if current == CheckState.FAILED:
        return previous != CheckState.FAILED
    return previous == CheckState.FAILED and current != CheckState.NOT_RUN


def latest_check_outcomes(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]
) -> dict[dg.AssetCheckKey, CheckOutcome]:
    """The last *completed* evaluation per check: a check planned in a running run keeps its old state.

    Uses the event log's check summary records, which hold both the latest
    execution (possibly still PLANNED) and the latest completed one.
    """
    if not keys or not instance.event_log_storage.supports_asset_checks:
        return {}
    summaries = instance.event_log_storage.get_asset_check_summary_records(list(keys))
    outcomes = {}
    for key in keys:
        summary = summaries.get(key)
        record = summary.last_completed_check_execution_record if summary else None
        evaluation = record.evaluation if record else None
        if record is None or evaluation is None:
            outcomes[key] = CheckOutcome(key, CheckState.NOT_RUN)
            continue
        if evaluation.passed:
            state = CheckState.PASSED
        elif evaluation.severity == dg.AssetCheckSeverity.ERROR:
            state = CheckState.FAILED
        else:
            state = CheckState.WARNED
        outcomes[key] = CheckOutcome(key, state, evaluation.description, record.run_id or None)
    return outcomes

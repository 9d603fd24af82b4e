"""Deletes finished runs older than the retention, with their event logs and compute logs, in batches.

Dagster has no retention of its own for runs (only for schedule and sensor ticks), so this
walks the old runs through the instance's public API: oldest first, keeping the unfinished
ones (the run filter asks only for finished runs) and those holding a latest event
(`latest_events`), deleting the rest until `max_runs` are gone. The next purge picks up where
this one stopped: what it deleted no longer matches, and what it kept is few (at most one
run per asset partition and check) and is simply passed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from logikal_square_sync.maintenance.latest_events import latest_events_held

# Dagster's finished states: a run in any other (queued, starting, started, canceling) may still
# write events, or is the run monitoring's to end.
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
_PAGE = 100

_log = logging.getLogger(__name__)


@dataclass
class PurgeResult:
    deleted: list[str] = field(default_factory=list)
    # run id -> why it stays (the latest events it holds)
    kept: dict[str, list[str]] = field(default_factory=dict)
    # True when the batch was full: older runs may remain for the next purge.
    more: bool = False


def delete_run_with_logs(instance: dg.DagsterInstance, run_id: str) -> None:
    """The run's compute logs first: if that fails, the run (and the way to its logs) stays for a retry."""
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    instance.delete_run(run_id)


def purge_runs(
    instance: dg.DagsterInstance, started_before: datetime, max_runs: int, log: logging.Logger = _log
) -> PurgeResult:
    """Deletes at most `max_runs` finished runs created before `started_before` that hold no latest event."""
    if started_before.tzinfo is None:
        raise ValueError("started_before must be timezone-aware")
    filters = dg.RunsFilter(statuses=FINISHED, created_before=started_before.astimezone(UTC))
    result = PurgeResult()
    # The page query starts after the last run kept: a deleted run cannot be a cursor.
    cursor: str | None = None
    while True:
        page = instance.get_run_records(filters=filters, limit=_PAGE, ascending=True, cursor=cursor)
        for record in page:
            run_id = record.dagster_run.run_id
            if len(result.deleted) >= max_runs:
                result.more = True
                return result
            held = latest_events_held(instance, run_id)
            if held:
                result.kept[run_id] = held
                cursor = run_id
                log.debug("Keeping run %s: it holds %s", run_id, "; ".join(held))
                continue
            delete_run_with_logs(instance, run_id)
            result.deleted.append(run_id)
        if len(page) < _PAGE:
            return result

"""Job `dagster_history_purge`: one batch of the run purge (`purge.py`), with what it did as metadata."""

from datetime import timedelta

import dagster as dg

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.maintenance.purge import purge_runs
from logikal_square_sync.policies import MAX_RUNTIME_TAG, RetentionPolicy, policies

PURGE_JOB = "dagster_history_purge"
# A pool of its own (dagster.yaml: one slot per pool): a manual purge waits for a scheduled one
# instead of walking the same runs at the same time. No sync shares it.
PURGE_POOL = "dagster_history"
_KEPT_SHOWN = 20


def _retention() -> RetentionPolicy:
    return policies().retention


@dg.op(
    name="purge_old_runs",
    pool=PURGE_POOL,
    out=dg.Out(dg.Nothing),
    description=(
        "Deletes finished runs started more than retention.runs_days ago (policies.yaml) with their "
        "event logs and compute logs, at most retention.max_runs_per_tick of them; keeps every run "
        "holding the latest materialization (or attempt) of an asset or project partition, or the "
        "latest execution of a check."
    ),
)
def purge_old_runs(context: dg.OpExecutionContext) -> dg.Output[None]:
    retention = _retention()
    cutoff = utc_now() - timedelta(days=retention.runs_days)
    result = purge_runs(context.instance, cutoff, retention.max_runs_per_tick, context.log)
    for run_id, held in list(result.kept.items())[:_KEPT_SHOWN]:
        context.log.info(
            f"Kept run {run_id}, older than {retention.runs_days} days: it holds {'; '.join(held)}"
        )
    context.log.info(
        f"Deleted {len(result.deleted)} runs started before {cutoff.isoformat()}; kept {len(result.kept)}"
        + ("; more remain for the next purge" if result.more else "")
    )
    return dg.Output(
        None,
        metadata={
            "started_before": dg.MetadataValue.timestamp(cutoff),
            "runs_deleted": len(result.deleted),
            "old_runs_kept": len(result.kept),
            "more_remain": result.more,
        },
    )


def purge_job(retention: RetentionPolicy | None = None) -> dg.JobDefinition:
    """Built on call, so its runtime bound follows the policy files as they are then."""
    retention = retention or _retention()

    @dg.job(
        name=PURGE_JOB,
        executor_def=dg.in_process_executor,
        tags={MAX_RUNTIME_TAG: str(round(retention.max_runtime_minutes * 60))},
        description=(
            "Housekeeping of Dagster's own storage (docs/operations.md, Retention): deletes old finished "
            "runs with their event logs and compute logs, one batch per run; syncs nothing."
        ),
    )
    def dagster_history_purge() -> None:
        purge_old_runs()

    return dagster_history_purge

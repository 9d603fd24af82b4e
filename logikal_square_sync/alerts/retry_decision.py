"""Whether a failed run is the last word: Dagster's run retries may still re-execute it.

With run retries on (dagster.yaml `run_retries`, tag `dagster/max_retries`),
Dagster tags each failed run `dagster/will_retry` true or false, and tags one
it retried `dagster/auto_retry_run_id`. The tag is written just after the
run's failure is stored, so a sensor can see the failure before the decision;
and "will retry" turns into "false" when launching the retry fails. A failure
is therefore final only once Dagster says so, or when no decision (or no
retry) has come within a wait (policies.yaml, alerts.retry_decision_wait_seconds).
"""

from __future__ import annotations

from enum import StrEnum

import dagster as dg

# Dagster's names (dagster._core.storage.tags WILL_RETRY_TAG, AUTO_RETRY_RUN_ID_TAG); not exported.
WILL_RETRY_TAG = "dagster/will_retry"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"


class RetryDecision(StrEnum):
    FINAL = "final"  # no retry follows: alert
    RETRIED = "retried"  # a retry run exists; its own outcome counts
    PENDING = "pending"  # no decision yet, or a retry promised but not launched: look again next tick


def retry_decision(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RetryDecision:
    if run.status != dg.DagsterRunStatus.FAILURE or not instance.run_retries_enabled:
        return RetryDecision.FINAL
    will_retry = run.tags.get(WILL_RETRY_TAG)
    if will_retry is None:
        return RetryDecision.PENDING
    if will_retry.strip().lower() != "true":
        return RetryDecision.FINAL
    return RetryDecision.RETRIED if run.tags.get(AUTO_RETRY_RUN_ID_TAG) else RetryDecision.PENDING

"""A failed Square step is tried again in its run, after a delay, when a retry can help.

What a nightly Square run does when a step fails (values: `retries` of policies.yaml):

- An outage that outlasts the HTTP client's own attempts (`SquareRetriesExhausted`: no answer,
  or 429/5xx until `max_attempts` ran out) or a database that dropped the connection or timed
  out a lock (`OperationalError`) is retried in the same run: `dg.RetryRequested`, up to
  `max_retries` times, `delay_minutes` after each failure. Dagster frees the step's pool slot
  while it waits, so a manual run of that asset may go first; the sync then resumes from its
  watermarks like any run. The last failure is raised as it is, so its alert shows the real
  error, and only then is an alert sent (the run fails with `dagster/will_retry=false`).
- Anything else (a refused token, a bad request, a malformed record, a bug) is raised at once:
  the same request fails the same way after any delay, and its alert should not wait.

Why a step retry and not Dagster's run retries for this: Dagster 1.13's run retries (the
daemon in `dagster/_daemon/auto_run_reexecution/`) re-execute a failed run at once and have no
delay setting; an immediate retry of an outage that just outlasted six HTTP attempts fails
again. Run retries handle the other case, a run whose worker died with no step left to retry
(`policies.run_retry_tags`). A hand-written re-execution after a delay (a sensor, a run
coordinator) would repeat what these two already do. `dg.RetryRequested` rather than a
`dg.RetryPolicy` on the asset: a policy retries every exception, a wrong token included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.policies import Retries, policies
from logikal_square_sync.square.engine.client import SquareRetriesExhausted

TRANSIENT: tuple[type[BaseException], ...] = (SquareRetriesExhausted, sa.exc.OperationalError)


@contextmanager
def retried_when_transient(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, retries: Retries | None = None
) -> Iterator[None]:
    """Runs the step's body; a transient failure asks Dagster to run the step again after the delay."""
    retries = retries or policies().retries
    try:
        yield
    except TRANSIENT as error:
        if context.retry_number >= retries.max_retries:
            raise
        context.log.warning(
            f"{type(error).__name__}: {error} - retry {context.retry_number + 1} of {retries.max_retries} "
            f"in {retries.delay_minutes:g} min (policies.yaml retries.delay_minutes)"
        )
        raise dg.RetryRequested(
            max_retries=retries.max_retries, seconds_to_wait=retries.delay_minutes * 60
        ) from error

"""The master switch at tick time: every syncing schedule and sensor skips while it is off.

BACKGROUND_SYNC_ENABLED=false starts them STOPPED (`settings.default_status`), but Dagster keeps
a schedule or sensor someone started in the UI running across redeploys: the state in its
storage wins over the default. So each tick asks the switch again and skips, saying why. The
alert sensors are not wrapped: a failure during maintenance still pages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import dagster as dg

from logikal_square_sync.orchestration.settings import BACKGROUND_SYNC_ENABLED, background_sync_enabled

P = ParamSpec("P")
R = TypeVar("R")

SKIP_MESSAGE = (
    f"{BACKGROUND_SYNC_ENABLED} is false: background syncs are switched off for this deployment, "
    "so this tick starts nothing (materializing by hand still works). Redeploy with "
    f"{BACKGROUND_SYNC_ENABLED}=true to resume."
)


def background_only(evaluate: Callable[P, R]) -> Callable[P, R | dg.SkipReason]:
    """Wraps a schedule's or sensor's evaluation function: it runs only while the switch is on.

    `functools.wraps` keeps the signature Dagster reads to pass the context and resources.
    """

    @functools.wraps(evaluate)
    def evaluate_if_switched_on(*args: P.args, **kwargs: P.kwargs) -> R | dg.SkipReason:
        if not background_sync_enabled():
            return dg.SkipReason(SKIP_MESSAGE)
        return evaluate(*args, **kwargs)

    return evaluate_if_switched_on


def background_schedule(*, tags: Mapping[str, str], **schedule: Any) -> dg.ScheduleDefinition:
    """A `dg.ScheduleDefinition` whose every tick requests one run tagged `tags`, unless switched off.

    With an `execution_fn` Dagster no longer copies the schedule's `tags` onto its runs, so the
    run request carries them itself; the schedule keeps them too, as the UI shows them there.
    """
    run_tags = dict(tags)

    @background_only
    def request_run(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(tags=run_tags)

    return dg.ScheduleDefinition(tags=run_tags, execution_fn=request_run, **schedule)

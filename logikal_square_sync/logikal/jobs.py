"""Job `logikal_project_sync`: one project's phases, elevations and parts lists (a force sync)."""

import dagster as dg

from logikal_square_sync.logikal.assets import ELEVATIONS_KEY, LOGIKAL, PARTS_LISTS_KEY, PHASES_KEY
from logikal_square_sync.policies import longest, max_runtime_tags, policies, run_retry_tags

PROJECT_SYNC_JOB = "logikal_project_sync"

logikal_project_sync = dg.define_asset_job(
    name=PROJECT_SYNC_JOB,
    # Partitioned by `logikal_projects`, like the assets it selects.
    selection=dg.AssetSelection.assets(PHASES_KEY, ELEVATIONS_KEY, PARTS_LISTS_KEY),
    # One walk materializes all three, so the longest of their limits bounds the run.
    # Every run of it (the project-sync sensors', a force sync, the UI's) is re-executed from
    # failure when its worker dies; a failed step waits for the sensor's failure backoff instead.
    tags={
        **max_runtime_tags(longest([LOGIKAL.phases, LOGIKAL.elevations, LOGIKAL.parts_lists])),
        **run_retry_tags(policies().retries),
    },
    description=(
        "Syncs one LogiKal project (pick its partition: the project GUID) - phases, elevations and the "
        "parts lists of new or changed elevations. The run queue runs one sync per project at a time."
    ),
)

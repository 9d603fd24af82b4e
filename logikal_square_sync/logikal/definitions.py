"""Everything LogiKal: assets, the two checks, the force-sync job, schedules and the sensors."""

import dagster as dg

from logikal_square_sync.logikal.assets import logikal_directories, logikal_project_contents, logikal_projects
from logikal_square_sync.logikal.checks import (
    parts_lists_readable,
    project_contents_fresh,
    rejected_records_checks,
)
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.resource import logikal_resource_from_env
from logikal_square_sync.logikal.schedules import logikal_schedules
from logikal_square_sync.logikal.sensors import logikal_sensors
from logikal_square_sync.orchestration.code_references import with_code_references


def build_defs() -> dg.Definitions:
    """Built on call: schedules and the sensor follow BACKGROUND_SYNC_ENABLED and SYNC_TIMEZONE then."""
    return dg.Definitions(
        # Each asset page links to the file and line that defines it (*Definition → Code references*).
        assets=with_code_references([logikal_directories, logikal_projects, logikal_project_contents]),
        asset_checks=[project_contents_fresh, parts_lists_readable, *rejected_records_checks],
        jobs=[logikal_project_sync],
        schedules=logikal_schedules(),
        sensors=logikal_sensors(),
        # The "warehouse" resource comes from the top-level definitions, shared by every source system.
        resources={"logikal": logikal_resource_from_env()},
    )

"""Assembles the code location: each source system contributes its own Definitions.

Dagster loads `defs` lazily (`@dg.definitions`): importing this module builds nothing and
touches no file; the schedules' and sensors' default status and time zone are read when
the definitions are built. Tests call `build_defs()` for fresh definitions.
"""

import dagster as dg

from logikal_square_sync.alerts import definitions as alerts
from logikal_square_sync.logikal import definitions as logikal
from logikal_square_sync.square import definitions as square
from logikal_square_sync.warehouse.resource import warehouse_resource_from_env


def build_defs() -> dg.Definitions:
    """The whole code location `logikal_square_sync`, read from the environment as it is now."""
    return dg.Definitions.merge(
        # Shared by every source system, so it is defined once here. Each run is one process: the
        # syncs wait on HTTP and the database, not on a CPU, so a subprocess per step would only
        # add its start-up (seconds of imports) and memory; parallelism comes from separate runs
        # (one per LogiKal project partition), which the run queue and pools keep apart.
        dg.Definitions(
            resources={"warehouse": warehouse_resource_from_env()}, executor=dg.in_process_executor
        ),
        square.build_defs(),
        logikal.build_defs(),
        alerts.build_defs(),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()

"""Assembles the code location: each source system contributes its own Definitions.

Dagster loads `defs` lazily (`@dg.definitions`): importing this module builds nothing and
touches no file; the schedules' and sensors' default status and time zone are read when
the definitions are built, once per process. Tests call `build_defs()` for fresh definitions.
"""

import functools

import dagster as dg

from logikal_square_sync.alerts import definitions as alerts
from logikal_square_sync.logikal import definitions as logikal
from logikal_square_sync.maintenance import definitions as maintenance
from logikal_square_sync.orchestration.settings import background_sync_enabled
from logikal_square_sync.square import definitions as square
from logikal_square_sync.warehouse.resource import warehouse_resource_from_env


def build_defs() -> dg.Definitions:
    """The whole code location `logikal_square_sync`, read from the environment as it is now.

    Refuses to load on a misconfiguration that would otherwise pass unnoticed: an invalid
    BACKGROUND_SYNC_ENABLED, or no WAREHOUSE_URL where Dagster's storage is PostgreSQL.
    """
    # Read here as well as by each schedule: a typo fails the load even with every schedule
    # and sensor disabled in policies.yaml.
    background_sync_enabled()
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
        maintenance.build_defs(),
    )


@functools.cache
def _defs_of_this_process() -> dg.Definitions:
    return build_defs()


@dg.definitions
def defs() -> dg.Definitions:
    # Dagster asks for the definitions again and again in one process (six times in one
    # `dagster asset materialize`); they depend only on the environment and the policy files,
    # read once, and a reload of the code location is a new process.
    return _defs_of_this_process()

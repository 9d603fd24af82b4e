"""Assembles the code location: each source system contributes its own Definitions."""

import dagster as dg

from logikal_square_sync.alerts import definitions as alerts
from logikal_square_sync.logikal import definitions as logikal
from logikal_square_sync.square import definitions as square
from logikal_square_sync.warehouse.resource import warehouse_resource_from_env

defs = dg.Definitions.merge(
    # Shared by every source system, so it is defined once here. Each run is one process: the
    # syncs wait on HTTP and the database, not on a CPU, so a subprocess per step would only
    # add its start-up (seconds of imports) and memory; parallelism comes from separate runs
    # (one per LogiKal project partition), which the run queue and pools keep apart.
    dg.Definitions(resources={"warehouse": warehouse_resource_from_env()}, executor=dg.in_process_executor),
    square.defs,
    logikal.defs,
    alerts.defs,
)

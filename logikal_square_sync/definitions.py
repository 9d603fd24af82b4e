"""Assembles the code location: each source system contributes its own Definitions."""

import dagster as dg

from logikal_square_sync.alerts import definitions as alerts
from logikal_square_sync.logikal import definitions as logikal
from logikal_square_sync.square import definitions as square
from logikal_square_sync.warehouse.resource import warehouse_resource_from_env

defs = dg.Definitions.merge(
    # Shared by every source system, so it is defined once here.
    dg.Definitions(resources={"warehouse": warehouse_resource_from_env()}),
    square.defs,
    logikal.defs,
    alerts.defs,
)

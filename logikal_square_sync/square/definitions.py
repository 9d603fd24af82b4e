"""Everything Square: assets, checks, the history job and schedules."""

import dagster as dg

from logikal_square_sync.orchestration.code_references import with_code_references
from logikal_square_sync.square.assets import (
    square_catalog,
    square_inventory,
    square_locations,
    square_orders,
)
from logikal_square_sync.square.backfill import square_orders_backfill
from logikal_square_sync.square.checks import orders_complete, rejected_records_checks
from logikal_square_sync.square.resource import square_resource_from_env
from logikal_square_sync.square.schedules import square_schedules


def build_defs() -> dg.Definitions:
    """Built on call: the schedules follow BACKGROUND_SYNC_ENABLED and SYNC_TIMEZONE as they are then."""
    return dg.Definitions(
        # Each asset page links to the file and line that defines it (*Definition → Code references*).
        assets=with_code_references([square_locations, square_catalog, square_orders, square_inventory]),
        asset_checks=[orders_complete, *rejected_records_checks],
        jobs=[square_orders_backfill],
        schedules=square_schedules(),
        resources={"square": square_resource_from_env()},
    )

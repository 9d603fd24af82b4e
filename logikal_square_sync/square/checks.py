"""Asset checks on the Square assets."""

import dagster as dg

from logikal_square_sync.orchestration.rejected_checks import rejected_records_check
from logikal_square_sync.orchestration.settings import sync_zone
from logikal_square_sync.policies import policies
from logikal_square_sync.square.assets import (
    square_catalog,
    square_inventory,
    square_locations,
    square_orders,
)
from logikal_square_sync.square.engine import catalog_sync, inventory_sync, location_sync, order_sync
from logikal_square_sync.square.engine.completeness import compare_recent_orders
from logikal_square_sync.square.engine.store import SOURCE
from logikal_square_sync.square.resource import SquareResource
from logikal_square_sync.warehouse.resource import WarehouseResource


@dg.asset_check(asset=square_orders, name="orders_complete", blocking=False)
def orders_complete(square: SquareResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every order Square has for the recent days is in the warehouse.

    Compares order ids day by day over `completeness_window_days` (policies.yaml)
    up to the last completed sync, and fails naming the days and some missing ids,
    with the `square_orders_backfill` run config that recovers them. An order's day
    is the day of its `created_at` in SYNC_TIMEZONE.
    """
    policy = policies().square.orders
    with square.client(policy.max_attempts) as client:
        result = compare_recent_orders(
            client,
            warehouse.engine,
            window_days=policy.completeness_window_days,
            zone=sync_zone(),
            group_size=policy.location_group_size,
        )
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.description(),
        metadata=result.metadata(),
    )


# One per asset: fails while records of the asset are in rejected_records, naming them.
rejected_records_checks = [
    rejected_records_check(square_locations, SOURCE, [location_sync.OBJECT_TYPE]),
    rejected_records_check(
        square_catalog,
        SOURCE,
        [*catalog_sync.OBJECT_TYPES_BY_TABLE.values(), "catalog object"],
    ),
    rejected_records_check(square_orders, SOURCE, [order_sync.OBJECT_TYPE]),
    rejected_records_check(square_inventory, SOURCE, [inventory_sync.OBJECT_TYPE]),
]

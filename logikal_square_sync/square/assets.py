"""The Square assets: locations, catalog, orders, inventory.

The four are independent steps: none reads another's output, so one failing (say the catalog
on an outage) never keeps the others from syncing in the same run. The orders ask Square for
the location ids themselves (one ListLocations call) rather than reading `square_locations`;
the inventory reads every count whatever the catalog holds. Declaring `deps` between them would
make Dagster skip orders and inventory whenever locations or catalog fail. What their rows refer
to is recorded as column lineage instead (`dagster/column_lineage`, the asset page's *Columns*),
and docs/square.md explains it. A failed step is retried in its run when a retry can help
(`square/retries.py`).
"""

import dagster as dg
from pydantic import Field

from logikal_square_sync.orchestration.freshness_policies import freshness_policy, policy_metadata
from logikal_square_sync.orchestration.report_metadata import report_metadata
from logikal_square_sync.policies import policies
from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.inventory_sync import sync_inventory
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.order_sync import sync_orders
from logikal_square_sync.square.resource import SquareResource
from logikal_square_sync.square.retries import retried_when_transient
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.asset_metadata import row_count, table_metadata
from logikal_square_sync.warehouse.resource import WarehouseResource

SQUARE = policies().square
OWNERS = ["team:data-engineering"]
KINDS = {"square", "python", "sql"}
LOCATIONS_KEY = dg.AssetKey(["square", "locations"])
CATALOG_KEY = dg.AssetKey(["square", "catalog"])


def refers_to(**columns: dg.AssetKey) -> dict[str, dg.TableColumnLineage]:
    """Column lineage: each column holds the `id` of a row of that asset (no execution dependency)."""
    return {
        "dagster/column_lineage": dg.TableColumnLineage(
            deps_by_column={
                column: [dg.TableColumnDep(asset_key=key, column_name="id")]
                for column, key in columns.items()
            }
        )
    }


@dg.asset(
    key=LOCATIONS_KEY,
    group_name="square",
    kinds=KINDS,
    owners=OWNERS,
    freshness_policy=freshness_policy(SQUARE.locations),
    metadata={**policy_metadata(SQUARE.locations), **table_metadata(t.square_locations)},
    pool="square_locations",
)
def square_locations(
    context: dg.AssetExecutionContext, square: SquareResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Square locations (stores), inactive ones included, in `square_locations`.

    Refreshed fully on every run: ListLocations has no `updated_at` and no
    paging. Locations are never deleted at Square; they turn INACTIVE.
    """
    with retried_when_transient(context), square.client(SQUARE.locations.max_attempts) as client:
        report = sync_locations(client, warehouse.engine)
    return dg.MaterializeResult(
        metadata={
            **report_metadata(report, warehouse.engine),
            **row_count(warehouse.engine, t.square_locations),
        }
    )


class CatalogSyncConfig(dg.Config):
    full_refresh: bool = Field(
        default=False, description="Read the whole catalog instead of the objects changed since the last run."
    )


@dg.asset(
    key=CATALOG_KEY,
    group_name="square",
    kinds=KINDS,
    owners=OWNERS,
    freshness_policy=freshness_policy(SQUARE.catalog),
    metadata={
        **policy_metadata(SQUARE.catalog),
        **table_metadata(t.square_catalog_items, t.square_catalog_variations, t.square_catalog_categories),
    },
    pool="square_catalog",
    description=(
        "Catalog categories, items and item variations in `square_catalog_*`.\n\n"
        "Incremental through SearchCatalogObjects from the last complete run (minus an overlap of "
        f"{SQUARE.catalog.overlap_minutes} min), deletions included: a deleted object stays as a row with "
        "`is_deleted = true` and its last known name, SKU and price. A newer `version` always wins. A full "
        f"refresh at least every {SQUARE.catalog.full_refresh_days} days or when launched with "
        "`full_refresh: true`."
    ),
)
def square_catalog(
    context: dg.AssetExecutionContext,
    config: CatalogSyncConfig,
    square: SquareResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    with retried_when_transient(context), square.client(SQUARE.catalog.max_attempts) as client:
        report = sync_catalog(client, warehouse.engine, SQUARE.catalog, full_refresh=config.full_refresh)
    return dg.MaterializeResult(
        metadata={
            **report_metadata(report, warehouse.engine),
            **row_count(warehouse.engine, t.square_catalog_items),
        }
    )


@dg.asset(
    key=["square", "orders"],
    group_name="square",
    kinds=KINDS,
    owners=OWNERS,
    freshness_policy=freshness_policy(SQUARE.orders),
    metadata={
        **policy_metadata(SQUARE.orders),
        **table_metadata(t.square_orders, t.square_order_line_items),
        **refers_to(location_id=LOCATIONS_KEY),
    },
    pool="square_orders",
    description=(
        "Orders and their line items in `square_orders` and `square_order_line_items`.\n\n"
        f"Read per group of up to {SQUARE.orders.location_group_size} locations by `updated_at`, resuming "
        f"from a per-location watermark minus a {SQUARE.orders.lookback_hours} h lookback for late offline "
        "orders. A crash loses nothing: the next run continues from the last committed page. To re-fetch "
        "a past date range, launch the job `square_orders_backfill`."
    ),
)
def square_orders(
    context: dg.AssetExecutionContext, square: SquareResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with retried_when_transient(context), square.client(SQUARE.orders.max_attempts) as client:
        report = sync_orders(client, warehouse.engine, SQUARE.orders)
    return dg.MaterializeResult(
        metadata={**report_metadata(report, warehouse.engine), **row_count(warehouse.engine, t.square_orders)}
    )


class InventorySyncConfig(dg.Config):
    full_refresh: bool = Field(
        default=False, description="Read every count instead of those changed since the last run."
    )


@dg.asset(
    key=["square", "inventory"],
    group_name="square",
    kinds=KINDS,
    owners=OWNERS,
    freshness_policy=freshness_policy(SQUARE.inventory),
    metadata={
        **policy_metadata(SQUARE.inventory),
        **table_metadata(t.square_inventory_counts),
        **refers_to(catalog_object_id=CATALOG_KEY, location_id=LOCATIONS_KEY),
    },
    pool="square_inventory",
    description=(
        "Inventory counts per (variation, location, state) in `square_inventory_counts`.\n\n"
        f"Incremental by `calculated_at`, with a full refresh at least every "
        f"{SQUARE.inventory.full_refresh_days} days or when launched with `full_refresh: true`. An object "
        "that was never counted has no row: read it as zero."
    ),
)
def square_inventory(
    context: dg.AssetExecutionContext,
    config: InventorySyncConfig,
    square: SquareResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    with retried_when_transient(context), square.client(SQUARE.inventory.max_attempts) as client:
        report = sync_inventory(client, warehouse.engine, SQUARE.inventory, full_refresh=config.full_refresh)
    return dg.MaterializeResult(
        metadata={
            **report_metadata(report, warehouse.engine),
            **row_count(warehouse.engine, t.square_inventory_counts),
        }
    )

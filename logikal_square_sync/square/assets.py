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

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.orchestration.freshness_policies import freshness_policy, policy_metadata
from logikal_square_sync.orchestration.report_metadata import report_metadata
from logikal_square_sync.policies import SyncPolicy, policies
from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.client import SquareClient
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
# A sync as an asset runs it: with a Square client, the warehouse, and whether a full refresh was asked for.
Sync = Callable[[SquareClient, sa.Engine, bool], SyncReport]


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


@dataclass(frozen=True)
class SquareAsset:
    """What sets one Square asset apart from the others."""

    key: dg.AssetKey
    tables: tuple[sa.Table, ...]  # the tables it writes, the one whose row count it reports first
    sync: Sync
    policy: SyncPolicy
    pool: str
    description: str  # the asset page's text
    full_refresh: str | None = None  # what the run config's `full_refresh` flag does, if it has one
    lineage: Mapping[str, dg.TableColumnLineage] = field(default_factory=dict)  # `refers_to`


def _full_refresh_config(description: str) -> dict[str, dg.Field]:
    # The schema a `dg.Config` with `full_refresh: bool = False` declares: launches keep their run config.
    return {
        "full_refresh": dg.Field(
            dg.Noneable(dg.BoolSource), default_value=False, is_required=False, description=description
        )
    }


def _declared_here(depth: int = 2) -> dict[str, dg.CodeReferencesMetadataValue]:
    """A code reference to the line that called the factory: the asset's own spec, listed before the
    factory's function (which `with_source_code_references` adds), so each page links what sets it apart."""
    # Walks the frames rather than `inspect.stack()`, which reads the source of every frame on the
    # stack (importlib's included): a quarter of a second for the four assets.
    frame = inspect.currentframe()
    for _ in range(depth):
        assert frame is not None
        frame = frame.f_back
    assert frame is not None
    spec = dg.LocalFileCodeReference(
        file_path=frame.f_code.co_filename, line_number=frame.f_lineno, label="spec"
    )
    return {"dagster/code_references": dg.CodeReferencesMetadataValue(code_references=[spec])}


def square_asset(spec: SquareAsset) -> dg.AssetsDefinition:
    """The asset that runs `spec.sync` once per materialization, retried when a retry can help."""

    @dg.asset(
        key=spec.key,
        group_name="square",
        kinds=KINDS,
        owners=OWNERS,
        freshness_policy=freshness_policy(spec.policy),
        metadata={
            **policy_metadata(spec.policy),
            **table_metadata(*spec.tables),
            **spec.lineage,
            **_declared_here(),
        },
        pool=spec.pool,
        description=spec.description,
        config_schema=_full_refresh_config(spec.full_refresh) if spec.full_refresh else None,
    )
    def square_sync(
        context: dg.AssetExecutionContext, square: SquareResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        full_refresh = bool(spec.full_refresh and context.op_config["full_refresh"])
        with retried_when_transient(context), square.client(spec.policy.max_attempts) as client:
            report = spec.sync(client, warehouse.engine, full_refresh)
        return dg.MaterializeResult(
            metadata={
                **report_metadata(report, warehouse.engine),
                **row_count(warehouse.engine, spec.tables[0]),
            }
        )

    return square_sync


square_locations = square_asset(
    SquareAsset(
        key=LOCATIONS_KEY,
        tables=(t.square_locations,),
        sync=lambda client, engine, _: sync_locations(client, engine),
        policy=SQUARE.locations,
        pool="square_locations",
        description=(
            "Square locations (stores), inactive ones included, in `square_locations`.\n\n"
            "Refreshed fully on every run: ListLocations has no `updated_at` and no paging. Locations are "
            "never deleted at Square; they turn INACTIVE."
        ),
    )
)

square_catalog = square_asset(
    SquareAsset(
        key=CATALOG_KEY,
        tables=(t.square_catalog_items, t.square_catalog_variations, t.square_catalog_categories),
        sync=lambda client, engine, full: sync_catalog(client, engine, SQUARE.catalog, full_refresh=full),
        policy=SQUARE.catalog,
        pool="square_catalog",
        description=(
            "Catalog categories, items and item variations in `square_catalog_*`.\n\n"
            "Incremental through SearchCatalogObjects from the last complete run (minus an overlap of "
            f"{SQUARE.catalog.overlap_minutes} min), deletions included: a deleted object stays as a row "
            "with `is_deleted = true` and its last known name, SKU and price. A newer `version` always wins. "
            f"A full refresh at least every {SQUARE.catalog.full_refresh_days} days or when launched with "
            "`full_refresh: true`."
        ),
        full_refresh="Read the whole catalog instead of the objects changed since the last run.",
    )
)

square_orders = square_asset(
    SquareAsset(
        key=dg.AssetKey(["square", "orders"]),
        tables=(t.square_orders, t.square_order_line_items),
        sync=lambda client, engine, _: sync_orders(client, engine, SQUARE.orders),
        policy=SQUARE.orders,
        pool="square_orders",
        description=(
            "Orders and their line items in `square_orders` and `square_order_line_items`.\n\n"
            f"Read per group of up to {SQUARE.orders.location_group_size} locations by `updated_at`, "
            f"resuming from a per-location watermark minus a {SQUARE.orders.lookback_hours} h lookback for "
            "late offline orders. A crash loses nothing: the next run continues from the last committed "
            "page. To re-fetch a past date range, launch the job `square_orders_backfill`."
        ),
        lineage=refers_to(location_id=LOCATIONS_KEY),
    )
)

square_inventory = square_asset(
    SquareAsset(
        key=dg.AssetKey(["square", "inventory"]),
        tables=(t.square_inventory_counts,),
        sync=lambda client, engine, full: sync_inventory(client, engine, SQUARE.inventory, full_refresh=full),
        policy=SQUARE.inventory,
        pool="square_inventory",
        description=(
            "Inventory counts per (variation, location, state) in `square_inventory_counts`.\n\n"
            f"Incremental by `calculated_at`, with a full refresh at least every "
            f"{SQUARE.inventory.full_refresh_days} days or when launched with `full_refresh: true`. An "
            "object that was never counted has no row: read it as zero."
        ),
        full_refresh="Read every count instead of those changed since the last run.",
        lineage=refers_to(catalog_object_id=CATALOG_KEY, location_id=LOCATIONS_KEY),
    )
)

"""History recovery: re-fetch the Square orders updated in a date range."""

import dagster as dg
from pydantic import Field

from logikal_square_sync.policies import max_runtime_tags, policies
from logikal_square_sync.square.orders import DateRange, sync_orders
from logikal_square_sync.square.resource import SquareResource
from logikal_square_sync.warehouse.resource import WarehouseResource


class OrdersBackfillConfig(dg.Config):
    start: str = Field(description="First day to re-fetch, ISO date (YYYY-MM-DD), UTC.")
    end: str = Field(description="Last day to re-fetch, inclusive, ISO date (YYYY-MM-DD), UTC.")


@dg.op(pool="square_orders", tags={"kind": "square"})
def refetch_square_orders(
    context: dg.OpExecutionContext,
    config: OrdersBackfillConfig,
    square: SquareResource,
    warehouse: WarehouseResource,
) -> None:
    """Re-fetches every order updated between `start` and `end` and upserts it (newer wins)."""
    try:
        history = DateRange.parse(config.start, config.end)
    except ValueError as error:
        raise dg.Failure(description=f"square_orders_backfill: {error}") from None
    policy = policies().square.orders
    with square.client(policy.max_attempts) as client:
        report = sync_orders(client, warehouse.engine, policy, history=history, log=context.log.info)
    context.log_event(
        dg.AssetMaterialization(
            asset_key=["square", "orders"],
            description=f"orders updated {history.start} .. {history.end} re-fetched",
            metadata=report.metadata(),
        )
    )


@dg.job(
    name="square_orders_backfill",
    description=(
        "Re-fetch the Square orders updated in a date range (run config: start, end as ISO dates), "
        "e.g. to recover orders missing after an outage. Idempotent: re-running it changes nothing."
    ),
    tags={"team": "data-engineering", **max_runtime_tags(policies().square.orders)},
)
def square_orders_backfill() -> None:
    refetch_square_orders()

"""History recovery: re-fetch the Square orders of a range of days."""

from typing import Literal

import dagster as dg
from pydantic import Field

from logikal_square_sync.orchestration.report_metadata import report_metadata
from logikal_square_sync.orchestration.settings import sync_zone
from logikal_square_sync.policies import max_runtime_tags, policies, run_retry_tags
from logikal_square_sync.square.engine.order_days import OrderDays
from logikal_square_sync.square.engine.order_sync import HistoryRefetch, sync_orders
from logikal_square_sync.square.resource import SquareResource
from logikal_square_sync.square.retries import retried_when_transient
from logikal_square_sync.warehouse.resource import WarehouseResource


class OrdersBackfillConfig(dg.Config):
    start: str = Field(description="First day to re-fetch, ISO date (YYYY-MM-DD), a day in SYNC_TIMEZONE.")
    end: str = Field(description="Last day to re-fetch, inclusive, ISO date (YYYY-MM-DD).")
    by: Literal["created_at", "updated_at"] = Field(
        default="created_at",
        description=(
            "Which days: orders created on them (what orders_complete reports) or last updated on them."
        ),
    )
    force: bool = Field(
        default=False,
        description="Rewrite every order read and its line items, even where the stored copy is as new.",
    )


@dg.op(pool="square_orders", tags={"kind": "square"})
def refetch_square_orders(
    context: dg.OpExecutionContext,
    config: OrdersBackfillConfig,
    square: SquareResource,
    warehouse: WarehouseResource,
) -> None:
    """Re-fetches the orders of the days `start`..`end` and upserts them (newer wins, or all with `force`)."""
    try:
        days = OrderDays.parse(config.start, config.end, sync_zone())
    except ValueError as error:
        raise dg.Failure(description=f"square_orders_backfill: {error}") from None
    history = HistoryRefetch(days, by=config.by, force=config.force)
    policy = policies().square.orders
    with retried_when_transient(context), square.client(policy.max_attempts) as client:
        report = sync_orders(client, warehouse.engine, policy, history=history)
    context.log_event(
        dg.AssetMaterialization(
            asset_key=["square", "orders"],
            description=f"{history.describe()} re-fetched",
            metadata=report_metadata(report, warehouse.engine),
        )
    )


@dg.job(
    name="square_orders_backfill",
    description=(
        "Re-fetch the Square orders of a range of days (run config: start, end as ISO dates in "
        "SYNC_TIMEZONE; by: created_at or updated_at; force), e.g. to recover the orders orders_complete "
        "reports missing. Idempotent: re-running it changes nothing."
    ),
    tags={
        "team": "data-engineering",
        **max_runtime_tags(policies().square.orders, step_retries=policies().retries),
        **run_retry_tags(policies().retries),
    },
)
def square_orders_backfill() -> None:
    refetch_square_orders()

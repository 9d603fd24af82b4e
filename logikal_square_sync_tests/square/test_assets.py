"""The Square assets, check and history job run through Dagster against the sandbox."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.orchestration.settings import sync_zone
from logikal_square_sync.square.assets import (
    square_catalog,
    square_inventory,
    square_locations,
    square_orders,
)
from logikal_square_sync.square.backfill import square_orders_backfill
from logikal_square_sync.square.checks import orders_complete, rejected_records_checks
from logikal_square_sync.square.resource import SquareResource
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_sandbox.square.edge_records import fix_unwritable, serve_unwritable
from logikal_square_sync_tests.square.helpers import (
    assert_warehouse_equals_source,
    every_mode_on_sqlite,
    source_order_days,
)

ASSETS = [square_locations, square_catalog, square_orders, square_inventory]


@pytest.fixture
def resources(square_url, sandbox, warehouse) -> dict:
    return {
        "square": SquareResource(base_url=square_url, access_token=sandbox.config.access_token),
        "warehouse": warehouse,
    }


def _materialize(resources: dict, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize([*ASSETS, orders_complete], resources=resources, **kwargs)


@every_mode_on_sqlite
def test_materializing_every_asset_fills_the_warehouse(resources, engine, sandbox) -> None:
    result = _materialize(resources)
    assert result.success
    assert_warehouse_equals_source(engine, sandbox)

    orders_metadata = result.asset_materializations_for_node("square__orders")[0].metadata
    for key in (
        "rows_inserted",
        "rows_updated",
        "rows_marked_deleted",
        "pages",
        "api_calls",
        "retries",
        "watermark_before",
        "watermark_after",
        "duration_seconds",
    ):
        assert key in orders_metadata, key
    assert orders_metadata["rows_inserted"].value == sandbox.order_count()
    assert orders_metadata["dagster/row_count"].value == sandbox.order_count()
    assert isinstance(orders_metadata["watermark_after"], dg.TimestampMetadataValue)
    assert orders_metadata["watermark_before"].value == "none"  # the first run

    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("orders_complete", True)]


def test_completeness_check_names_the_days_and_ids_of_lost_orders(resources, engine, sandbox) -> None:
    assert _materialize(resources).success
    days = source_order_days(sandbox, sync_zone())  # the product's own "day of an order"
    newest_day = max(days.values())
    lost = sorted(i for i, day in days.items() if day == newest_day)[:3]
    with engine.begin() as conn:
        conn.execute(t.square_orders.delete().where(t.square_orders.c.id.in_(lost)))

    evaluation = _check(resources)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    description = _description(evaluation)
    assert f"{newest_day}: {len(lost)} of" in description
    for order_id in lost:
        assert order_id in description
    assert evaluation.metadata["orders_missing"].value == len(lost)
    # The message names the backfill that repairs it; running exactly that makes the check pass.
    days_config = {"start": str(newest_day), "end": str(newest_day), "by": "created_at"}
    config = {"ops": {"refetch_square_orders": {"config": days_config}}}
    assert json.dumps(config) in description
    assert square_orders_backfill.execute_in_process(run_config=config, resources=resources).success
    assert _check(resources).passed


def test_the_backfill_job_recovers_a_date_range(resources, engine, sandbox) -> None:
    assert _materialize(resources).success
    with engine.begin() as conn:
        conn.execute(t.square_order_line_items.delete())
        conn.execute(t.square_orders.delete())
    days = sorted(source_order_days(sandbox, sync_zone()).values())
    config = {"ops": {"refetch_square_orders": {"config": {"start": str(days[0]), "end": str(days[-1])}}}}

    result = square_orders_backfill.execute_in_process(run_config=config, resources=resources)
    assert result.success
    assert_warehouse_equals_source(engine, sandbox)
    (materialization,) = [
        e.materialization for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert materialization.asset_key == dg.AssetKey(["square", "orders"])

    again = square_orders_backfill.execute_in_process(run_config=config, resources=resources)
    assert again.success
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.square_orders)).scalar_one() == len(days)


def test_the_backfill_job_rejects_a_bad_range_clearly(resources) -> None:
    config = {"ops": {"refetch_square_orders": {"config": {"start": "2026-05-09", "end": "2026-05-01"}}}}
    result = square_orders_backfill.execute_in_process(
        run_config=config, resources=resources, raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("refetch_square_orders")
    assert failure is not None and failure.user_failure_data is not None
    assert "start 2026-05-09 is after end 2026-05-01" in (failure.user_failure_data.description or "")


def test_a_wrong_token_fails_naming_the_endpoint_and_code(square_url, warehouse) -> None:
    resources = {
        "square": SquareResource(base_url=square_url, access_token="not-the-token"),
        "warehouse": warehouse,
    }
    result = dg.materialize([square_locations], resources=resources, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("square__locations")
    assert failure is not None and failure.error is not None and failure.error.cause is not None
    message = failure.error.cause.message
    assert "ListLocations failed with HTTP 401" in message and "UNAUTHORIZED" in message
    assert "not-the-token" not in message
    # A refused token fails at once: the same request would be refused after any delay.
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def _check(resources: dict) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [*ASSETS, orders_complete], resources=resources, selection=dg.AssetSelection.checks(orders_complete)
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def _description(evaluation: dg.AssetCheckEvaluation) -> str:
    assert evaluation.description is not None, "the check said nothing"
    return evaluation.description


def _named_backfill(evaluation: dg.AssetCheckEvaluation) -> dict[str, Any]:
    """The run config the check's failure text tells an operator to launch."""
    return json.loads(_description(evaluation).split("with the run config ", 1)[1])


def test_an_order_created_on_a_flagged_day_and_updated_later_is_recovered_by_the_named_backfill(
    resources, engine, sandbox
) -> None:
    assert _materialize(resources).success
    zone = sync_zone()
    created = source_order_days(sandbox, zone)
    flagged = max(created.values()) - timedelta(days=3)
    victim = sorted(i for i, day in created.items() if day == flagged)[0]
    sandbox.update_orders(ids=[victim])  # updated today, days after it was created
    assert _materialize(resources).success
    assert source_order_days(sandbox, zone, by="updated_at")[victim] > flagged
    with engine.begin() as conn:
        conn.execute(t.square_orders.delete().where(t.square_orders.c.id == victim))

    evaluation = _check(resources)
    assert not evaluation.passed and victim in _description(evaluation)
    config = _named_backfill(evaluation)
    assert config == {
        "ops": {
            "refetch_square_orders": {
                "config": {"start": str(flagged), "end": str(flagged), "by": "created_at"}
            }
        }
    }
    assert square_orders_backfill.execute_in_process(run_config=config, resources=resources).success
    assert_warehouse_equals_source(engine, sandbox)
    assert _check(resources).passed


def test_a_forced_backfill_repairs_damaged_line_items(resources, engine, sandbox) -> None:
    assert _materialize(resources).success
    created = source_order_days(sandbox, sync_zone())
    day = sorted(set(created.values()))[len(set(created.values())) // 2]
    victim = sorted(i for i, d in created.items() if d == day)[0]
    li = t.square_order_line_items.c
    with engine.begin() as conn:
        uid = conn.execute(sa.select(li.uid).where(li.order_id == victim).order_by(li.uid)).scalars().first()
        damaged = conn.execute(
            t.square_order_line_items.update()
            .where(li.order_id == victim, li.uid == uid)
            .values(name="garbage", quantity=999, catalog_object_id=None, total_amount=-1)
        )
        assert damaged.rowcount == 1

    def stored_line() -> tuple:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(li.name, li.quantity, li.catalog_object_id, li.total_amount).where(
                    li.order_id == victim, li.uid == uid
                )
            ).one()
        return row.name, Decimal(str(row.quantity)).normalize(), row.catalog_object_id, row.total_amount

    line = next(item for item in sandbox.order(victim)["line_items"] if item["uid"] == uid)
    truth = (
        line["name"],
        Decimal(line["quantity"]).normalize(),
        line["catalog_object_id"],
        line["total_money"]["amount"],
    )
    days = {"start": str(day), "end": str(day)}
    # Newer wins: a plain backfill sees the same order version and leaves the damage alone.
    plain = {"ops": {"refetch_square_orders": {"config": days}}}
    assert square_orders_backfill.execute_in_process(run_config=plain, resources=resources).success
    assert stored_line() == ("garbage", Decimal(999), None, -1)
    forced = {"ops": {"refetch_square_orders": {"config": {**days, "force": True}}}}
    assert square_orders_backfill.execute_in_process(run_config=forced, resources=resources).success
    assert stored_line() == truth
    assert_warehouse_equals_source(engine, sandbox)


def test_the_catalog_asset_reads_everything_with_full_refresh(resources, engine, sandbox) -> None:
    assert _materialize(resources).success
    variation = sorted(o["id"] for o in sandbox.catalog_objects() if o["type"] == "ITEM_VARIATION")[0]
    v = t.square_catalog_variations.c
    with engine.begin() as conn:
        conn.execute(t.square_catalog_variations.delete().where(v.id == variation))

    def catalog(**config) -> str:
        run_config = {"ops": {"square__catalog": {"config": config}}} if config else None
        result = dg.materialize([square_catalog], resources=resources, run_config=run_config)
        (materialization,) = result.asset_materializations_for_node("square__catalog")
        mode = materialization.metadata["mode"].value
        assert isinstance(mode, str)
        return mode

    assert catalog() == "incremental"
    with engine.connect() as conn:
        assert conn.execute(sa.select(v.id).where(v.id == variation)).first() is None
    assert catalog(full_refresh=True) == "full refresh"
    assert_warehouse_equals_source(engine, sandbox)


def test_each_assets_check_names_its_quarantined_records_until_a_sync_writes_them(
    resources, engine, sandbox
) -> None:
    assets = [*ASSETS, *rejected_records_checks]
    assert dg.materialize(assets, resources=resources).success
    bad = serve_unwritable(sandbox)

    result = dg.materialize(assets, resources=resources)
    assert result.success  # every sync completed
    checks = {
        c.asset_key.to_user_string(): c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "no_rejected_records"
    }
    assert {key: check.passed for key, check in checks.items()} == {
        "square/locations": True,
        "square/catalog": False,
        "square/orders": False,
        "square/inventory": False,
    }
    orders = checks["square/orders"]
    assert orders.description is not None and orders.description.startswith(
        "3 Square record(s) the warehouse refused are in rejected_records: order "
    )
    assert all(order_id in orders.description for order_id in bad.orders)
    assert "name contains a NUL character" in orders.description
    assert orders.metadata["rejected_records"].value == 3
    assert bad.items[0] in (checks["square/catalog"].description or "")
    assert "/".join(bad.counts[0]) in (checks["square/inventory"].description or "")
    metadata = result.asset_materializations_for_node("square__orders")[0].metadata
    assert metadata["records_rejected"].value == 3

    fix_unwritable(sandbox, bad)
    result = dg.materialize(assets, resources=resources)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert_warehouse_equals_source(engine, sandbox)

"""A Square sandbox served over real HTTP, and helpers that read the warehouse and the source's truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from logikal_square_sync.http import RetryPolicy
from logikal_square_sync.policies import policies
from logikal_square_sync.sandbox.server import serve_in_thread
from logikal_square_sync.sandbox.square import SquareSandbox, SquareSandboxConfig, create_app
from logikal_square_sync.square.catalog import sync_catalog
from logikal_square_sync.square.client import SquareClient
from logikal_square_sync.square.inventory import sync_inventory
from logikal_square_sync.square.locations import sync_locations
from logikal_square_sync.square.order_days import order_day
from logikal_square_sync.square.orders import sync_orders
from logikal_square_sync.warehouse import tables as t

# Twelve locations make two SearchOrders groups (Square takes at most ten per call).
SMALL = SquareSandboxConfig(seed=3, locations=12, orders=700, items=12, categories=4, history_days=20)
# Small pages, so a few hundred orders still cross many cursors.
PAGE_SIZE = 50


@pytest.fixture
def sandbox() -> Iterator[SquareSandbox]:
    sandbox = SquareSandbox(SMALL)
    yield sandbox
    sandbox.faults.clear()  # lets any held request answer, so the server stops at once


@pytest.fixture
def square_url(sandbox: SquareSandbox) -> Iterator[str]:
    with serve_in_thread(create_app(sandbox)) as served:
        yield served.url


@pytest.fixture
def make_client(square_url: str, sandbox: SquareSandbox) -> Callable[[], SquareClient]:
    def make() -> SquareClient:
        return SquareClient(
            square_url,
            sandbox.config.access_token,
            retry=RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05),
            timeout=2.0,
        )

    return make


def orders_policy():
    return policies().square.orders.model_copy(update={"page_size": PAGE_SIZE})


def inventory_policy():
    return policies().square.inventory.model_copy(update={"page_size": PAGE_SIZE})


def sync_everything(make_client: Callable[[], SquareClient], engine: sa.Engine) -> dict:
    """Runs the four syncs in dependency order; returns their reports by name."""
    reports = {}
    with make_client() as client:
        reports["locations"] = sync_locations(client, engine)
    with make_client() as client:
        reports["catalog"] = sync_catalog(client, engine, page_size=PAGE_SIZE)
    with make_client() as client:
        reports["orders"] = sync_orders(client, engine, orders_policy())
    with make_client() as client:
        reports["inventory"] = sync_inventory(client, engine, inventory_policy())
    return reports


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- the source's truth, computed from the sandbox's own records ------------------


def source_orders(sandbox: SquareSandbox) -> dict[str, tuple]:
    return {
        o["id"]: (
            o["location_id"],
            o["state"],
            ts(o["updated_at"]),
            o.get("version"),
            o["total_money"]["amount"],
        )
        for o in sandbox.iter_orders()
    }


def source_order_days(sandbox: SquareSandbox, zone: ZoneInfo, by: str = "created_at") -> dict[str, date]:
    """Each order's day as the product defines it (`order_days.order_day`) of `created_at` or `updated_at`."""
    return {o["id"]: order_day(ts(o[by]), zone) for o in sandbox.iter_orders()}


def source_line_items(sandbox: SquareSandbox) -> set[tuple]:
    return {
        (
            o["id"],
            li["uid"],
            li["name"],
            Decimal(li["quantity"]),
            li.get("catalog_object_id"),
            li["total_money"]["amount"],
        )
        for o in sandbox.iter_orders()
        for li in o.get("line_items", [])
    }


def source_catalog(sandbox: SquareSandbox) -> dict[str, set[tuple]]:
    truth: dict[str, set[tuple]] = {"CATEGORY": set(), "ITEM": set(), "ITEM_VARIATION": set()}
    for obj in sandbox.catalog_objects(include_deleted=True):
        data = (
            obj.get(
                {"CATEGORY": "category_data", "ITEM": "item_data", "ITEM_VARIATION": "item_variation_data"}[
                    obj["type"]
                ]
            )
            or {}
        )
        truth[obj["type"]].add((obj["id"], data.get("name"), obj["version"], bool(obj.get("is_deleted"))))
    return truth


def source_inventory(sandbox: SquareSandbox) -> dict[tuple, tuple]:
    return {
        (c["catalog_object_id"], c["location_id"], c["state"]): (
            Decimal(c["quantity"]),
            ts(c["calculated_at"]),
        )
        for c in sandbox.inventory_counts()
    }


# --- the warehouse ------------------------------------------------------------------


def warehouse_orders(engine: sa.Engine) -> dict[str, tuple]:
    o = t.square_orders.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(o.id, o.location_id, o.state, o.updated_at, o.version, o.total_amount))
        return {row[0]: tuple(row[1:]) for row in rows}


def warehouse_line_items(engine: sa.Engine) -> set[tuple]:
    li = t.square_order_line_items.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(li.order_id, li.uid, li.name, li.quantity, li.catalog_object_id, li.total_amount)
        )
        return {(r[0], r[1], r[2], Decimal(str(r[3])).normalize(), r[4], r[5]) for r in rows}


def warehouse_catalog(engine: sa.Engine) -> dict[str, set[tuple]]:
    tables = {
        "CATEGORY": t.square_catalog_categories,
        "ITEM": t.square_catalog_items,
        "ITEM_VARIATION": t.square_catalog_variations,
    }
    with engine.connect() as conn:
        return {
            kind: {
                tuple(row)
                for row in conn.execute(sa.select(tb.c.id, tb.c.name, tb.c.version, tb.c.is_deleted))
            }
            for kind, tb in tables.items()
        }


def warehouse_inventory(engine: sa.Engine) -> dict[tuple, tuple]:
    c = t.square_inventory_counts.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.catalog_object_id, c.location_id, c.state, c.quantity, c.calculated_at)
        )
        return {(r[0], r[1], r[2]): (Decimal(str(r[3])).normalize(), r[4]) for r in rows}


def normalized(items: set[tuple]) -> set[tuple]:
    return {tuple(v.normalize() if isinstance(v, Decimal) else v for v in item) for item in items}


def assert_warehouse_equals_source(engine: sa.Engine, sandbox: SquareSandbox) -> None:
    assert warehouse_orders(engine) == source_orders(sandbox)
    assert warehouse_line_items(engine) == normalized(source_line_items(sandbox))
    assert warehouse_catalog(engine) == source_catalog(sandbox)
    expected_inventory = {k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items()}
    assert warehouse_inventory(engine) == expected_inventory
    with engine.connect() as conn:
        locations = set(conn.execute(sa.select(t.square_locations.c.id, t.square_locations.c.status)))
    assert locations == {(loc["id"], loc["status"]) for loc in sandbox.locations()}

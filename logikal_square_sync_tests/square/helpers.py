"""What the Square tests share: sandbox modes, policies, syncs, and the source's and the warehouse's truth.

The fixtures that serve the sandbox and make clients are in `conftest.py`; `sync_process`
runs a sync in a process of its own with a policy named here.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import sqlalchemy as sa
import time_machine

from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.policies import CatalogPolicy, InventoryPolicy, OrdersPolicy, policies
from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.inventory_sync import sync_inventory
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.order_days import order_day
from logikal_square_sync.square.engine.order_sync import sync_orders
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_sandbox.clock import ManualClock
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig
from logikal_square_sync_tests.marks import SQLITE_ONLY

if TYPE_CHECKING:
    from _pytest.mark import ParameterSet

MakeClient = Callable[..., SquareClient]

# Twelve locations make two SearchOrders groups (Square takes at most ten per call).
SMALL = SquareSandboxConfig(seed=3, locations=12, orders=700, items=12, categories=4, history_days=20)
# Small pages, so a few hundred orders still cross many cursors.
PAGE_SIZE = 50

# The sandbox's answers where Square's are undocumented (SquareSandboxConfig): as Square's own
# examples suggest, and the other way round on every question.
AS_DOCUMENTED: dict[str, Any] = {}
OTHERWISE: dict[str, Any] = {"tombstones": "full", "result_sets": "live", "catalog_order": "updated_at"}
MODES = [pytest.param(AS_DOCUMENTED, id="as-documented"), pytest.param(OTHERWISE, id="otherwise")]
# Both warehouses in every mode.
every_mode = pytest.mark.parametrize("sandbox", MODES, indirect=True)
# Every mode on SQLite, the documented one on PostgreSQL too: for the tests that multiply the
# modes by many cases (faults, records), while the convergence tests keep `every_mode`.
every_mode_on_sqlite = pytest.mark.parametrize(
    "sandbox",
    [MODES[0], pytest.param(OTHERWISE, id="otherwise", marks=SQLITE_ONLY)],
    indirect=True,
)
# On PostgreSQL the two corners (every answer as documented, every answer the other way);
# all eight combinations on SQLite.
_PG_CORNERS = {("minimal", "pinned", "shuffled"), ("full", "live", "updated_at")}


def all_modes(**overrides: Any) -> list[ParameterSet]:
    """Every combination of the sandbox's answers (`pytest.param`s), each with `overrides` on top."""
    return [
        pytest.param(
            {"tombstones": tombstones, "result_sets": result_sets, "catalog_order": order, **overrides},
            id=f"{tombstones}-{result_sets}-{order}",
            marks=() if (tombstones, result_sets, order) in _PG_CORNERS else SQLITE_ONLY,
        )
        for tombstones in ("minimal", "full")
        for result_sets in ("pinned", "live")
        for order in ("shuffled", "updated_at")
    ]


@dataclasses.dataclass
class Clocks:
    """The sandbox's ManualClock and the process clock (the sync's), moved on together."""

    sandbox: ManualClock
    process: time_machine.Traveller

    def advance(self, seconds: float) -> None:
        self.sandbox.advance(seconds)
        self.process.shift(seconds)


def orders_policy() -> OrdersPolicy:
    return policies().square.orders.model_copy(update={"page_size": PAGE_SIZE})


# Pages per transaction of the batching syncs (catalog, inventory) unless a test says otherwise: a few,
# so the small sandbox still makes several transactions of several pages each. The time limit is
# out of reach, so which pages share a transaction never depends on how fast the machine is.
BATCH_PAGES = 3
NO_TIME_LIMIT = 300


def _batched(page_size: int, batch_pages: int) -> dict[str, Any]:
    return {
        "page_size": page_size,
        "rows_per_transaction": page_size * batch_pages,
        "seconds_per_transaction": NO_TIME_LIMIT,
    }


def inventory_policy(page_size: int = PAGE_SIZE, batch_pages: int = BATCH_PAGES) -> InventoryPolicy:
    return policies().square.inventory.model_copy(update=_batched(page_size, batch_pages))


def catalog_policy(page_size: int = PAGE_SIZE, batch_pages: int = BATCH_PAGES) -> CatalogPolicy:
    return policies().square.catalog.model_copy(update=_batched(page_size, batch_pages))


def sync_everything(
    make_client: MakeClient,
    engine: sa.Engine,
    *,
    catalog_page_size: int = PAGE_SIZE,
    inventory_page_size: int = PAGE_SIZE,
) -> dict[str, SyncReport]:
    """Runs the four syncs in dependency order; returns their reports by name."""
    reports = {}
    with make_client() as client:
        reports["locations"] = sync_locations(client, engine)
    with make_client() as client:
        reports["catalog"] = sync_catalog(client, engine, catalog_policy(catalog_page_size))
    with make_client() as client:
        reports["orders"] = sync_orders(client, engine, orders_policy())
    with make_client() as client:
        reports["inventory"] = sync_inventory(client, engine, inventory_policy(inventory_page_size))
    return reports


def synced(
    make_client: MakeClient, sync: Callable[..., SyncReport], engine: sa.Engine, *args: Any, **kwargs: Any
) -> SyncReport:
    """One run of `sync` (a sync of `square/engine/`) with a client of its own."""
    with make_client() as client:
        return sync(client, engine, *args, **kwargs)


def ts(value: str | None) -> datetime:
    """A timestamp as Square or a watermark writes it; a missing one fails the test."""
    assert value is not None, "no timestamp where one was expected"
    return datetime.fromisoformat(value)


# --- the source's truth, computed from the sandbox's own records ------------------


def source_orders(sandbox: SquareSandbox) -> dict[str, tuple[Any, ...]]:
    """Each order's contract columns, as `warehouse_orders` reads them."""
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


def _line_item(order_id: str, item: dict[str, Any]) -> tuple[Any, ...]:
    """A line item's contract columns, as `warehouse_line_items` reads them."""
    quantity, total = Decimal(item["quantity"]), item["total_money"]["amount"]
    return (order_id, item["uid"], item["name"], quantity, item.get("catalog_object_id"), total)


def source_line_items(sandbox: SquareSandbox) -> set[tuple[Any, ...]]:
    return {_line_item(o["id"], item) for o in sandbox.iter_orders() for item in o.get("line_items", [])}


def source_catalog(sandbox: SquareSandbox) -> dict[str, set[tuple]]:
    """Every contract column of every object; a deleted one with its last live name, SKU, price, parent."""
    truth: dict[str, set[tuple]] = {"CATEGORY": set(), "ITEM": set(), "ITEM_VARIATION": set()}
    for obj in sandbox.catalog_objects(include_deleted=True, last_live_data=True):
        kind = obj["type"]
        data = obj[
            {"CATEGORY": "category_data", "ITEM": "item_data", "ITEM_VARIATION": "item_variation_data"}[kind]
        ]
        if kind == "CATEGORY":
            attributes: tuple = (data.get("name"), (data.get("parent_category") or {}).get("id"))
        elif kind == "ITEM":
            attributes = (data.get("name"), (data.get("categories") or [{}])[0].get("id"))
        else:
            price = data.get("price_money") or {}
            attributes = (
                data["item_id"],
                data.get("name"),
                data.get("sku"),
                price.get("amount"),
                price.get("currency"),
            )
        truth[kind].add((obj["id"], *attributes, obj["version"], ts(obj["updated_at"]), obj["is_deleted"]))
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


CATALOG_COLUMNS = {
    "CATEGORY": (t.square_catalog_categories, ("name", "parent_category_id")),
    "ITEM": (t.square_catalog_items, ("name", "category_id")),
    "ITEM_VARIATION": (
        t.square_catalog_variations,
        ("item_id", "name", "sku", "price_amount", "price_currency"),
    ),
}


def warehouse_catalog(engine: sa.Engine) -> dict[str, set[tuple]]:
    with engine.connect() as conn:
        return {
            kind: {
                tuple(row)
                for row in conn.execute(
                    sa.select(
                        table.c.id,
                        *(table.c[name] for name in attributes),
                        table.c.version,
                        table.c.updated_at,
                        table.c.is_deleted,
                    )
                )
            }
            for kind, (table, attributes) in CATALOG_COLUMNS.items()
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


def assert_catalog_equals_source(engine: sa.Engine, sandbox: SquareSandbox) -> None:
    """Every object with its contract columns; a tombstone with the attributes it had when deleted."""
    stored, truth = warehouse_catalog(engine), source_catalog(sandbox)
    for kind in truth:
        lacking, instead = (
            sorted(truth[kind] - stored[kind], key=str),
            sorted(stored[kind] - truth[kind], key=str),
        )
        assert not lacking and not instead, f"{kind}: the warehouse lacks {lacking}, has {instead} instead"


def assert_warehouse_equals_source(engine: sa.Engine, sandbox: SquareSandbox) -> None:
    assert warehouse_orders(engine) == source_orders(sandbox)
    assert warehouse_line_items(engine) == normalized(source_line_items(sandbox))
    assert_catalog_equals_source(engine, sandbox)
    expected_inventory = {k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items()}
    assert warehouse_inventory(engine) == expected_inventory
    with engine.connect() as conn:
        locations = set(conn.execute(sa.select(t.square_locations.c.id, t.square_locations.c.status)))
    assert locations == {(loc["id"], loc["status"]) for loc in sandbox.locations()}


def json_page(key: str, records: list[dict[str, Any]], cursor: str | None) -> bytes:
    """A page's body as the API sends it: `records` under `key`, and the cursor if any."""
    body: dict[str, Any] = {key: records}
    if cursor:
        body["cursor"] = cursor
    return msgspec.json.encode(body)


def sync_process(
    square_url: str, sandbox: SquareSandbox, warehouse_url: str, sync: str, policy: str
) -> subprocess.Popen[bytes]:
    """A sync in a process of its own, to be killed: `sync` is `module.function` of square/engine/,
    `policy` an expression of this module (say `orders_policy()`)."""
    module, function = sync.rsplit(".", 1)
    script = (
        "from logikal_square_sync.square.engine.client import SquareClient\n"
        f"from logikal_square_sync.square.engine.{module} import {function}\n"
        "from logikal_square_sync.warehouse.connections import warehouse_engine\n"
        "from logikal_square_sync_tests.square import helpers\n"
        f"client = SquareClient({square_url!r}, {sandbox.config.access_token!r}, timeout=120)\n"
        f"{function}(client, warehouse_engine({warehouse_url!r}), helpers.{policy})\n"
    )
    return subprocess.Popen([sys.executable, "-c", script])


def wait_while_it_runs(
    process: subprocess.Popen[bytes], done: Callable[[], bool], deadline: float, what: str
) -> None:
    """Polls `done` until it holds; fails if the process ended first or `deadline` (monotonic) passed."""
    while not done():
        assert process.poll() is None, "the sync ended before it could be killed"
        assert time.monotonic() < deadline, f"the sync did not {what} in time"
        time.sleep(0.05)

"""Records at the limits of Square's spec, and records no warehouse can take: what a sync must survive.

`serve_spec_edges` changes the sandbox so that it serves values as long and
as large as Square's OpenAPI spec allows (the limits are passed in: the
tests keep the table, checked against the spec). A warehouse must store every
one of them exactly. `serve_unwritable` makes it serve records that are valid
JSON of the right types but that no warehouse column can hold: a NUL
character in a line item's and in an item's name, and a count whose quantity
has more digits than any numeric column takes. `fix_unwritable` repairs
them at the source, as a merchant would, so the next sync sees them changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .state import INVENTORY_STATES

if TYPE_CHECKING:
    from .state import SquareSandbox

Key = tuple[str, str, str]
# The largest amount Money's int64 can carry.
INT64_MAX = 2**63 - 1


@dataclass
class SpecEdges:
    """What `serve_spec_edges` changed: ids of orders, catalog objects and inventory count keys."""

    orders: list[str] = field(default_factory=list)
    catalog: list[str] = field(default_factory=list)
    counts: list[Key] = field(default_factory=list)


@dataclass
class Unwritable:
    """What `serve_unwritable` made unwritable, by the object type the sync quarantines it as."""

    orders: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    counts: list[Key] = field(default_factory=list)

    def ids(self) -> set[tuple[str, str]]:
        """(object type, id) as `rejected_records` names them."""
        return (
            {("order", order_id) for order_id in self.orders}
            | {("catalog item", item_id) for item_id in self.items}
            | {("inventory count", "/".join(key)) for key in self.counts}
        )


def _text(length: int, stem: str) -> str:
    return (stem * (length // len(stem) + 1))[:length]


def serve_spec_edges(sandbox: SquareSandbox, max_length: Mapping[tuple[str, str], int]) -> SpecEdges:
    """New orders, edited catalog objects and new counts whose fields are at `max_length[(schema, field)]`.

    `max_length` needs the fields of OrderLineItem (uid, name, quantity,
    catalog_object_id), CatalogItem.name, CatalogCategory.name and
    InventoryCount (catalog_object_id, location_id, quantity), and
    ("Currency", "enum") for the longest currency code.
    """
    edges = SpecEdges()
    currency = next(c for c in ("UNKNOWN_CURRENCY",) if len(c) == max_length[("Currency", "enum")])
    line_limit = max_length[("OrderLineItem", "quantity")]
    # Square allows 5 decimals; the longest quantity fills the rest with digits.
    line_quantity = "9" * (line_limit - 6) + "." + "9" * 5
    edges.orders = sandbox.add_orders(3)
    line_item = {
        "catalog_object_id": _text(max_length[("OrderLineItem", "catalog_object_id")], "C"),
        "uid": _text(max_length[("OrderLineItem", "uid")], "U"),
        "name": _text(max_length[("OrderLineItem", "name")], "Né "),
        "quantity": line_quantity,
        "total_money": {"amount": INT64_MAX, "currency": currency},
    }
    for order_id in edges.orders:
        for name, value in line_item.items():
            sandbox.corrupt_order(order_id, f"line_items.0.{name}", value)
    with sandbox.lock:
        records = sorted(sandbox.catalog.records.values(), key=lambda r: r.id)
        item = next(r for r in records if r.type == "ITEM" and not r.is_deleted)
        category = next(r for r in records if r.type == "CATEGORY" and not r.is_deleted)
        variation = next(r for r in records if r.type == "ITEM_VARIATION" and not r.is_deleted)
        location = next(loc["id"] for loc in sandbox.locations())
    sandbox.update_catalog_object(item.id, name=_text(max_length[("CatalogItem", "name")], "Ü"))
    sandbox.update_catalog_object(category.id, name=_text(max_length[("CatalogCategory", "name")], "Ç"))
    sandbox.update_catalog_object(variation.id, price_amount=INT64_MAX, price_currency=currency)
    edges.catalog = [item.id, category.id, variation.id]
    count_limit = max_length[("InventoryCount", "quantity")]
    quantities = ["9" * count_limit, "9" * (count_limit - 6) + "." + "9" * 5]
    longest_state = max(sorted(INVENTORY_STATES), key=len)
    for quantity, state in zip(quantities, ("IN_STOCK", longest_state), strict=True):
        key = (
            _text(max_length[("InventoryCount", "catalog_object_id")], "V"),
            _text(max_length[("InventoryCount", "location_id")], "L"),
            state,
        )
        sandbox.put_inventory_count(key, quantity)
        edges.counts.append(key)
    # And one at a real location whose quantity is the smallest fraction Square allows.
    small = (variation.id, location, "IN_TRANSIT_TO")
    sandbox.put_inventory_count(small, "0.00001")
    edges.counts.append(small)
    return edges


def serve_unwritable(sandbox: SquareSandbox) -> Unwritable:
    """Three new orders and an item with a NUL in a name, and a count of 27 digits; other records stay."""
    bad = Unwritable()
    bad.orders = sandbox.add_orders(3)
    for order_id in bad.orders:
        sandbox.corrupt_order(order_id, "line_items.0.name", "Schraube\x00M8")
    with sandbox.lock:
        records = sorted(sandbox.catalog.records.values(), key=lambda r: r.id)
        items = [r for r in records if r.type == "ITEM" and not r.is_deleted]
        key = sorted(sandbox.inventory.counts)[0]
    item = items[-1]
    sandbox.update_catalog_object(item.id, name="Fenster\x00Griff")
    bad.items = [item.id]
    sandbox.put_inventory_count(key, "1" + "0" * 26)
    bad.counts = [key]
    return bad


def fix_unwritable(sandbox: SquareSandbox, bad: Unwritable) -> None:
    """The source repairs each record, which makes it newer: the next sync reads it again."""
    sandbox.update_orders(ids=bad.orders)
    for item_id in bad.items:
        sandbox.update_catalog_object(item_id, name="Fenstergriff")
    for key in bad.counts:
        sandbox.put_inventory_count(key, "12")

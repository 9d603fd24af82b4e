"""The limits Square's OpenAPI spec sets on the fields the warehouse stores, and where each is stored.

Extracted from the spec (square-connect-v2.openapi.json, release
2025-08-20) and committed, so that the tests built from it run without the
spec; `sandbox/test_square_spec_limits.py` checks this table against the spec
whenever the spec is there. ("<Enum>", "enum") is the longest value of an
enum. Fields the spec leaves unbounded (Square's object ids) are not here:
the warehouse keeps them in 64 characters and quarantines a longer one.
"""

from __future__ import annotations

import sqlalchemy as sa

from logikal_square_sync.warehouse import tables as t

MAX_LENGTH: dict[tuple[str, str], int] = {
    ("Location", "id"): 32,
    ("Location", "name"): 255,
    ("Location", "timezone"): 30,
    ("Location", "merchant_id"): 32,
    ("CatalogCategory", "name"): 255,
    ("CatalogItem", "name"): 512,
    ("OrderLineItem", "uid"): 60,
    ("OrderLineItem", "name"): 512,
    ("OrderLineItem", "quantity"): 12,
    ("OrderLineItem", "catalog_object_id"): 192,
    ("InventoryCount", "catalog_object_id"): 100,
    ("InventoryCount", "catalog_object_type"): 14,
    ("InventoryCount", "location_id"): 100,
    ("InventoryCount", "quantity"): 26,
    ("Currency", "enum"): 16,
    ("LocationStatus", "enum"): 8,
    ("LocationType", "enum"): 8,
    ("OrderState", "enum"): 9,
    ("InventoryState", "enum"): 26,
}

# Decimal strings: their length bounds the digits, not the characters a column holds.
DECIMALS = {("OrderLineItem", "quantity"), ("InventoryCount", "quantity")}

# Where the warehouse keeps each field: (table, column) for every entry of MAX_LENGTH.
STORED_IN: dict[tuple[str, str], list[tuple[sa.Table, str]]] = {
    ("Location", "id"): [(t.square_locations, "id")],
    ("Location", "name"): [(t.square_locations, "name")],
    ("Location", "timezone"): [(t.square_locations, "timezone")],
    ("Location", "merchant_id"): [(t.square_locations, "merchant_id")],
    ("CatalogCategory", "name"): [(t.square_catalog_categories, "name")],
    ("CatalogItem", "name"): [(t.square_catalog_items, "name")],
    ("OrderLineItem", "uid"): [(t.square_order_line_items, "uid")],
    ("OrderLineItem", "name"): [(t.square_order_line_items, "name")],
    ("OrderLineItem", "quantity"): [(t.square_order_line_items, "quantity")],
    ("OrderLineItem", "catalog_object_id"): [(t.square_order_line_items, "catalog_object_id")],
    ("InventoryCount", "catalog_object_id"): [(t.square_inventory_counts, "catalog_object_id")],
    ("InventoryCount", "catalog_object_type"): [(t.square_inventory_counts, "catalog_object_type")],
    ("InventoryCount", "location_id"): [(t.square_inventory_counts, "location_id")],
    ("InventoryCount", "quantity"): [(t.square_inventory_counts, "quantity")],
    ("Currency", "enum"): [
        (t.square_locations, "currency"),
        (t.square_catalog_variations, "price_currency"),
        (t.square_orders, "total_currency"),
        (t.square_order_line_items, "currency"),
    ],
    ("LocationStatus", "enum"): [(t.square_locations, "status")],
    ("LocationType", "enum"): [(t.square_locations, "type")],
    ("OrderState", "enum"): [(t.square_orders, "state")],
    ("InventoryState", "enum"): [(t.square_inventory_counts, "state")],
}


def edge_value(field: tuple[str, str]) -> str:
    """The longest value the spec allows for `field`: all nines for a decimal, else as many characters."""
    length = MAX_LENGTH[field]
    return "9" * length if field in DECIMALS else "x" * length

"""The committed table of Square's field limits (`square/spec_limits.py`) says what the spec says.

The tests built from that table (the warehouse's columns hold every edge
value, the sandbox serves them and a sync stores them exactly) run without
the spec; this one needs it and skips saying where to get it (fails under CI).
"""

from __future__ import annotations

import json
from typing import Any

from logikal_square_sync_tests.square.spec_limits import MAX_LENGTH

from .vendor_specs import SQUARE

# The schemas and fields the warehouse stores (square/engine/rows.py), and the enums among their types.
STORED_FIELDS = {
    "Location": ["id", "name", "status", "type", "timezone", "currency", "merchant_id", "created_at"],
    "CatalogObject": ["id", "updated_at", "version", "is_deleted"],  # `type` picks the table
    "CatalogCategory": ["name"],
    "CatalogItem": ["name", "category_id", "is_archived"],
    "CatalogItemVariation": ["item_id", "name", "sku"],
    "CatalogObjectCategory": ["id"],
    "Money": ["amount", "currency"],
    "Order": ["id", "location_id", "state", "created_at", "updated_at", "closed_at", "version"],
    "OrderLineItem": ["uid", "name", "quantity", "catalog_object_id"],
    "InventoryCount": ["catalog_object_id", "catalog_object_type", "state", "location_id", "quantity"],
}


def _limits_in_the_spec() -> dict[tuple[str, str], int]:
    schemas: dict[str, Any] = json.loads(SQUARE.require().read_text())["components"]["schemas"]
    found: dict[tuple[str, str], int] = {}
    for schema, fields in STORED_FIELDS.items():
        properties = schemas[schema]["properties"]
        for name in fields:
            prop = properties[name]
            ref = prop.get("$ref", "")
            if "maxLength" in prop and name not in ("created_at", "calculated_at"):
                found[(schema, name)] = prop["maxLength"]
            elif ref:
                enum = schemas[ref.rsplit("/", 1)[1]].get("enum")
                if enum:
                    found[(ref.rsplit("/", 1)[1], "enum")] = max(len(value) for value in enum)
    return found


def test_the_committed_limits_are_the_specs() -> None:
    """Every bounded field the warehouse stores is in the table, with the spec's limit; nothing else is."""
    in_spec = _limits_in_the_spec()
    assert in_spec == MAX_LENGTH, {
        key: (MAX_LENGTH.get(key), in_spec.get(key))
        for key in MAX_LENGTH.keys() | in_spec.keys()
        if MAX_LENGTH.get(key) != in_spec.get(key)
    }

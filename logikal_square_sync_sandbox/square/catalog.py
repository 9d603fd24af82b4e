"""The catalog: categories, items and their variations, with tombstones.

Objects are few (thousands at most), so they live as plain records. Every
mutation stamps `updated_at` and sets `version` to the same instant in epoch
milliseconds, as in the spec's examples. Deletion keeps the object as a
tombstone (`is_deleted: true`, `updated_at` = deletion time) so that a search
with deleted objects, or with `begin_time`, reports it. A tombstone is served
minimal by default, like the spec's example of a deleted variation (no name,
SKU or price; a variation keeps its `item_id`); the store keeps the object's
last data all the same, for the full-data tombstones of the other mode and
for tests that compare with it.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .generator import CATEGORY_NAMES, ITEM_ADJECTIVES, ITEM_NOUNS, VARIATION_NAMES, numbered, random_id
from .timefmt import format_ms

DATA_KEY = {"ITEM": "item_data", "CATEGORY": "category_data", "ITEM_VARIATION": "item_variation_data"}
SUPPORTED_TYPES = frozenset(DATA_KEY)
# Types SearchCatalogObjects returns when `object_types` is not given: top-level ones only.
DEFAULT_TYPES = frozenset({"ITEM", "CATEGORY"})


@dataclass
class CatalogRecord:
    id: str
    type: str
    updated_ms: int
    data: dict[str, Any]
    is_deleted: bool = False
    # ITEM: its variation ids in ordinal order.
    children: list[str] = field(default_factory=list)


@dataclass
class VariationPool:
    """The variations orders sell, append-only.

    An order remembers how long the pool was when its current version was
    written and only draws from that prefix, so adding catalog items never
    changes what an existing order looks like.
    """

    ids: list[str] = field(default_factory=list)
    item_names: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    prices: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    _price_array: np.ndarray | None = None
    _line_heads: list[str] = field(default_factory=list)

    def add(self, var_id: str, item_name: str, name: str, price: int, version: int) -> None:
        self.ids.append(var_id)
        self.item_names.append(item_name)
        self.names.append(name)
        self.prices.append(price)
        self.versions.append(version)
        self._price_array = None

    def __len__(self) -> int:
        return len(self.ids)

    def line_heads(self) -> list[str]:
        """Per variation, the catalog part of an order line as a JSON fragment (built once)."""
        for k in range(len(self._line_heads), len(self.ids)):
            self._line_heads.append(
                f'"catalog_object_id":"{self.ids[k]}","catalog_version":{self.versions[k]},'
                f'"name":{json.dumps(self.item_names[k])},"variation_name":{json.dumps(self.names[k])},'
                '"item_type":"ITEM"'
            )
        return self._line_heads

    @property
    def price_array(self) -> np.ndarray:
        if self._price_array is None:
            self._price_array = np.asarray(self.prices, dtype=np.int64)
        return self._price_array


class CatalogStore:
    def __init__(self, seed: int, minimal_tombstones: bool = True) -> None:
        self.minimal_tombstones = minimal_tombstones
        self.records: dict[str, CatalogRecord] = {}
        self.pool = VariationPool()
        self._rng = random.Random(f"{seed}:catalog")

    # ---- generation -------------------------------------------------------------------------

    def generate(
        self, categories: int, items: int, variations_per_item: int, start_ms: int, end_ms: int
    ) -> None:
        rng = self._rng
        span = max(end_ms - start_ms, 1)

        def stamp() -> int:
            # Most objects were last touched before the order history; some during it.
            base = start_ms - rng.randrange(1, 120) * 86_400_000 if rng.random() < 0.8 else start_ms
            ms = base + rng.randrange(span if base == start_ms else 86_400_000)
            # About 40% whole-second stamps, the rest millisecond-precise.
            return ms - ms % 1000 if rng.random() < 0.4 else ms

        category_ids: list[str] = []
        for k in range(categories):
            cid = random_id(rng, 24)
            data: dict[str, Any] = {
                "name": numbered(CATEGORY_NAMES, k),
                "category_type": "REGULAR_CATEGORY",
                "is_top_level": True,
                "online_visibility": True,
            }
            # One in five categories (never the first two) hangs under an earlier top-level one.
            top_level = [c for c in category_ids if self.records[c].data["is_top_level"]]
            if k >= 2 and k % 5 == 4 and top_level:
                parent = rng.choice(top_level)
                data["is_top_level"] = False
                data["parent_category"] = {"id": parent, "ordinal": rng.randrange(1, 1000)}
                data["root_category"] = parent
            self.records[cid] = CatalogRecord(cid, "CATEGORY", stamp(), data)
            category_ids.append(cid)

        for k in range(items):
            adjectives, nouns = len(ITEM_ADJECTIVES), len(ITEM_NOUNS)
            name = f"{ITEM_ADJECTIVES[k % adjectives]} {ITEM_NOUNS[k // adjectives % nouns]}"
            if k >= adjectives * nouns:
                name = f"{name} {k // (adjectives * nouns) + 1}"
            # One in ten items is uncategorised.
            category = rng.choice(category_ids) if category_ids and rng.random() >= 0.1 else None
            item_ms = stamp()
            self._new_item(name, category, variations_per_item, item_ms, min(5000, end_ms - item_ms))

    def _new_item(
        self, name: str, category_id: str | None, variations: int, updated_ms: int, jitter_ms: int = 0
    ) -> list[str]:
        rng = self._rng
        item_id = random_id(rng, 24)
        data: dict[str, Any] = {
            "name": name,
            "is_taxable": True,
            "product_type": "REGULAR",
            "is_archived": False,
        }
        if category_id is not None:
            data["categories"] = [{"id": category_id, "ordinal": rng.randrange(-(2**20), 2**20)}]
            data["reporting_category"] = {"id": category_id, "ordinal": 0}
        item = CatalogRecord(item_id, "ITEM", updated_ms, data)
        self.records[item_id] = item
        for v in range(variations):
            var_id = random_id(rng, 24)
            var_name = (
                VARIATION_NAMES[v % len(VARIATION_NAMES)] if v < len(VARIATION_NAMES) else f"Option {v + 1}"
            )
            price = rng.randrange(50, 300) * 5
            vdata: dict[str, Any] = {
                "item_id": item_id,
                "name": var_name,
                "sku": f"{item_id[:6]}-{v + 1:02d}",
                "ordinal": v,
                "track_inventory": True,
                "sellable": True,
                "stockable": True,
            }
            # Variable-priced variations have no price_money: the cashier enters it at sale.
            if rng.random() < 0.05:
                vdata["pricing_type"] = "VARIABLE_PRICING"
            else:
                vdata["pricing_type"] = "FIXED_PRICING"
                vdata["price_money"] = {"amount": price, "currency": "USD"}
            # A variation is written with, or after, its item.
            var_ms = updated_ms + (rng.randrange(0, jitter_ms) if jitter_ms > 0 and rng.random() < 0.3 else 0)
            self.records[var_id] = CatalogRecord(var_id, "ITEM_VARIATION", var_ms, vdata)
            item.children.append(var_id)
            self.pool.add(var_id, name, var_name, price, var_ms)
        return [item_id, *item.children]

    # ---- reading ----------------------------------------------------------------------------

    def get(self, object_id: str) -> CatalogRecord:
        try:
            return self.records[object_id]
        except KeyError:
            raise KeyError(f"no catalog object {object_id!r}") from None

    def render(
        self, rec: CatalogRecord, include_path_to_root: bool = False, full_tombstone: bool = False
    ) -> dict[str, Any]:
        if rec.is_deleted and self.minimal_tombstones and not full_tombstone:
            tombstone: dict[str, Any] = {
                "type": rec.type,
                "id": rec.id,
                "updated_at": format_ms(rec.updated_ms),
                "version": rec.updated_ms,
                "is_deleted": True,
            }
            if rec.type == "ITEM_VARIATION":
                tombstone["item_variation_data"] = {"item_id": rec.data["item_id"]}
            return tombstone
        data = copy.deepcopy(rec.data)
        if rec.type == "ITEM":
            # A live item lists its live variations; a deleted one keeps the variations deleted with it.
            data["variations"] = [
                self.render(self.records[v], full_tombstone=full_tombstone)
                for v in rec.children
                if rec.is_deleted or not self.records[v].is_deleted
            ]
        elif rec.type == "CATEGORY" and include_path_to_root:
            path = self._path_to_root(rec)
            if path:
                data["path_to_root"] = path
        return {
            "type": rec.type,
            "id": rec.id,
            "updated_at": format_ms(rec.updated_ms),
            "version": rec.updated_ms,
            "is_deleted": rec.is_deleted,
            "present_at_all_locations": True,
            DATA_KEY[rec.type]: data,
        }

    def _path_to_root(self, rec: CatalogRecord) -> list[dict[str, str]]:
        path = []
        seen = {rec.id}
        parent = rec.data.get("parent_category", {}).get("id")
        while parent and parent in self.records and parent not in seen:
            seen.add(parent)
            node = self.records[parent]
            path.append({"category_id": node.id, "category_name": node.data.get("name", "")})
            parent = node.data.get("parent_category", {}).get("id")
        return path

    def select(self, types: frozenset[str], include_deleted: bool, begin_ms: int | None) -> list[str]:
        return [
            r.id
            for r in self.records.values()
            if r.type in types
            and (include_deleted or not r.is_deleted)
            and (begin_ms is None or r.updated_ms > begin_ms)
        ]

    def related(self, rec: CatalogRecord) -> list[str]:
        """Ids the object references: an item's categories, a variation's item."""
        if rec.type == "ITEM":
            return [c["id"] for c in rec.data.get("categories", []) if c.get("id") in self.records]
        if rec.type == "ITEM_VARIATION":
            return [rec.data["item_id"]] if rec.data.get("item_id") in self.records else []
        if rec.type == "CATEGORY":
            parent = rec.data.get("parent_category", {}).get("id")
            return [parent] if parent in self.records else []
        return []

    def latest_ms(self) -> int:
        return max((r.updated_ms for r in self.records.values()), default=0)

    # ---- mutations --------------------------------------------------------------------------

    @staticmethod
    def _touch(rec: CatalogRecord, now: int) -> None:
        # Versions must rise even for two writes in the same millisecond.
        rec.updated_ms = max(now, rec.updated_ms + 1)

    def update(self, object_id: str, now: int, changes: dict[str, Any]) -> None:
        rec = self.get(object_id)
        if rec.is_deleted:
            raise ValueError(f"catalog object {object_id} is deleted")
        data = rec.data
        for key, value in changes.items():
            if key == "name":
                data["name"] = value
            elif key == "sku" and rec.type == "ITEM_VARIATION":
                data["sku"] = value
            elif key in ("price_amount", "price_currency") and rec.type == "ITEM_VARIATION":
                money = data.setdefault("price_money", {"amount": 0, "currency": "USD"})
                money["amount" if key == "price_amount" else "currency"] = value
                data["pricing_type"] = "FIXED_PRICING"
            elif key == "category_id" and rec.type == "ITEM":
                if value is None:
                    data.pop("categories", None)
                    data.pop("reporting_category", None)
                else:
                    self.get(value)
                    data["categories"] = [{"id": value, "ordinal": 0}]
                    data["reporting_category"] = {"id": value, "ordinal": 0}
            elif key == "is_archived" and rec.type == "ITEM":
                data["is_archived"] = bool(value)
            elif key == "parent_category_id" and rec.type == "CATEGORY":
                if value is None:
                    data.pop("parent_category", None)
                    data.pop("root_category", None)
                    data["is_top_level"] = True
                else:
                    self.get(value)
                    data["parent_category"] = {"id": value, "ordinal": 0}
                    data["root_category"] = value
                    data["is_top_level"] = False
            else:
                raise ValueError(f"cannot change {key!r} of a {rec.type}")
        self._touch(rec, now)

    def delete(self, object_id: str, now: int) -> list[str]:
        rec = self.get(object_id)
        if rec.is_deleted:
            return []
        affected = [rec]
        if rec.type == "ITEM":
            affected += [self.records[v] for v in rec.children if not self.records[v].is_deleted]
        stamp = max([now] + [r.updated_ms + 1 for r in affected])
        for r in affected:
            r.is_deleted = True
            r.updated_ms = stamp
        return [r.id for r in affected]

    def add_item(self, name: str, category_id: str | None, variations: int, now: int) -> list[str]:
        if category_id is not None:
            self.get(category_id)
        return self._new_item(name, category_id, variations, now)

    def variation_ids(self) -> list[str]:
        return [r.id for r in self.records.values() if r.type == "ITEM_VARIATION"]

"""Inventory counts keyed by (catalog object, location, state).

Not every (variation, location) pair has a count: a never-counted object has
no row at all, which clients must read as zero.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .timefmt import format_ms

Key = tuple[str, str, str]


@dataclass
class CountRecord:
    quantity: str
    calculated_ms: int


class InventoryStore:
    def __init__(self, seed: int) -> None:
        self.counts: dict[Key, CountRecord] = {}
        self._rng = random.Random(f"{seed}:inventory")

    def generate(
        self, variation_ids: Iterable[str], location_ids: list[str], start_ms: int, end_ms: int
    ) -> None:
        rng = self._rng
        span = max(end_ms - start_ms, 1)
        for var_id in variation_ids:
            for loc_id in location_ids:
                if rng.random() >= 0.75:
                    continue
                self.counts[(var_id, loc_id, "IN_STOCK")] = CountRecord(
                    self._quantity(), self._stamp(start_ms, span)
                )
                if rng.random() < 0.1:
                    waste = str(rng.randrange(1, 5))
                    self.counts[(var_id, loc_id, "WASTE")] = CountRecord(waste, self._stamp(start_ms, span))

    def _quantity(self) -> str:
        rng = self._rng
        # Mostly whole units; some weighed goods with decimals; the odd zero.
        roll = rng.random()
        if roll < 0.05:
            return "0"
        if roll < 0.15:
            return f"{rng.randrange(1, 500)}.{rng.randrange(1, 100):02d}".rstrip("0")
        return str(rng.randrange(1, 200))

    def _stamp(self, start_ms: int, span: int) -> int:
        ms = start_ms + self._rng.randrange(span)
        return ms - ms % 1000 if self._rng.random() < 0.3 else ms

    def put(self, key: Key, quantity: str, now_ms: int) -> None:
        previous = self.counts.get(key)
        stamp = now_ms if previous is None else max(now_ms, previous.calculated_ms + 1)
        self.counts[key] = CountRecord(quantity, stamp)

    def select(
        self,
        object_ids: set[str] | None,
        location_ids: set[str] | None,
        states: set[str] | None,
        after_ms: int | None,
    ) -> list[Key]:
        """Matching keys, newest `calculated_at` first (ties in key order, so paging is stable)."""
        keys = [
            key
            for key, rec in self.counts.items()
            if (object_ids is None or key[0] in object_ids)
            and (location_ids is None or key[1] in location_ids)
            and (states is None or key[2] in states)
            and (after_ms is None or rec.calculated_ms > after_ms)
        ]
        keys.sort()
        keys.sort(key=lambda k: self.counts[k].calculated_ms, reverse=True)
        return keys

    def render(self, key: Key) -> dict[str, Any]:
        rec = self.counts[key]
        return {
            "catalog_object_id": key[0],
            "catalog_object_type": "ITEM_VARIATION",
            "state": key[2],
            "location_id": key[1],
            "quantity": rec.quantity,
            "calculated_at": format_ms(rec.calculated_ms),
        }

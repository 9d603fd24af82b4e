"""The sandbox's source of truth: seeded data, mutation hooks, and ground truth for tests.

All state is guarded by one re-entrant lock: the HTTP server reads it from
its own thread while tests and the demo mutate it from theirs. Mutations are
stamped with the sandbox clock's current time, as changes at Square would be:
the real clock by default, a `ManualClock` that tests move by hand.

Where docs/square-api.md leaves Square's behaviour open, `SquareSandboxConfig`
has a switch for each plausible answer (`tombstones`, `result_sets`,
`catalog_order`), and `after_page` runs an edit between two pages of a
search, so the syncs are tested against every answer, not just one.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import numpy as np

from ..clock import SandboxClock, SystemClock
from .catalog import CatalogStore
from .cursors import CursorStore
from .faults import FaultPlan, SandboxStats
from .hooks import PageHook, PageHooks
from .inventory import InventoryStore
from .locations import LocationRecord, generate_locations, make_location
from .orders import OrderStore
from .timefmt import datetime_to_us, us_ceil_ms, us_floor_ms

DEFAULT_SQUARE_VERSION = "2025-08-20"
INVENTORY_STATES = frozenset(
    {
        "CUSTOM",
        "IN_STOCK",
        "SOLD",
        "RETURNED_BY_CUSTOMER",
        "RESERVED_FOR_SALE",
        "SOLD_ONLINE",
        "ORDERED_FROM_VENDOR",
        "RECEIVED_FROM_VENDOR",
        "IN_TRANSIT_TO",
        "NONE",
        "WASTE",
        "UNLINKED_RETURN",
        "COMPOSED",
        "DECOMPOSED",
        "SUPPORTED_BY_NEWER_VERSION",
        "IN_TRANSIT",
    }
)
_ITER_CHUNK = 5000

Tombstones = Literal["minimal", "full"]
ResultSets = Literal["pinned", "live"]
CatalogOrder = Literal["shuffled", "updated_at"]


@dataclass
class SquareSandboxConfig:
    seed: int = 7
    locations: int = 3  # about one in four INACTIVE (never deleted); at least one ACTIVE
    orders: int = 200
    line_items_per_order: float = 3  # average; each order has 1..5
    categories: int = 5
    items: int = 20
    variations_per_item: int = 2
    history_days: float = 30  # orders spread over [now - history_days, now]
    access_token: str = "sandbox-square-token"
    cursor_ttl_seconds: float = 300.0
    # The generated history ends here; None means the clock's time at construction.
    # Fix it to get byte-identical data from two sandboxes with the same seed.
    now: datetime | None = None
    square_version: str = DEFAULT_SQUARE_VERSION  # echoed when a request sends none
    # What a deleted catalog object carries. "minimal", as in Square's own example: type, id,
    # updated_at, version, is_deleted, and a variation's item_id, no name, SKU or price (and a
    # deleted item no nested variations). "full": its last data too.
    tombstones: Tombstones = "minimal"
    # "pinned": a search's first page fixes which objects it returns, in which order, and its
    # cursors page through that list (what each object shows is read when its page is served).
    # "live": every page re-evaluates the query as the data stands then and serves the slice at
    # the cursor's offset, so objects edited mid-run enter, leave and move, shifting the others
    # between pages: some are served twice, some never. SearchOrders keeps the one pinning Square
    # documents: a missing end_at is the time of the first request.
    result_sets: ResultSets = "pinned"
    # SearchCatalogObjects' result order: "shuffled" (stable per query body) or "updated_at"
    # (oldest first, so an edit moves an object to the end).
    catalog_order: CatalogOrder = "shuffled"

    def __post_init__(self) -> None:
        for name, kind in (
            ("tombstones", Tombstones),
            ("result_sets", ResultSets),
            ("catalog_order", CatalogOrder),
        ):
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"SquareSandboxConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )


class SquareSandbox:
    """One seller's Square account: locations, catalog, orders, inventory, faults and counters.

    Serve it with `create_app(sandbox)`; read the truth and mutate it through the methods below.
    """

    def __init__(self, config: SquareSandboxConfig | None = None, clock: SandboxClock | None = None) -> None:
        self.config = config = config or SquareSandboxConfig()
        self.clock = clock or SystemClock()
        if config.locations < 1:
            raise ValueError("a seller has at least one location")
        self.lock = threading.RLock()
        self.faults = FaultPlan()
        self.hooks = PageHooks()
        self.stats = SandboxStats()
        self.cursors = CursorStore(config.cursor_ttl_seconds, clock=self.clock.monotonic)
        anchor = self.now_ms() if config.now is None else us_floor_ms(datetime_to_us(config.now))
        self.anchor_ms = anchor
        history_ms = int(config.history_days * 86_400_000)
        start = anchor - history_ms

        seed = config.seed
        self._locations: list[LocationRecord] = generate_locations(seed, config.locations, start)
        self.catalog = CatalogStore(seed, minimal_tombstones=config.tombstones == "minimal")
        self.catalog.generate(config.categories, config.items, config.variations_per_item, start, anchor)
        self.orders = OrderStore(seed, self._locations, self.catalog.pool)
        self.orders.generate(
            config.orders, anchor, history_ms, config.line_items_per_order, np.random.default_rng([seed, 1])
        )
        self.inventory = InventoryStore(seed)
        self.inventory.generate(
            self.catalog.variation_ids(), [loc.id for loc in self._locations], start, anchor
        )
        # Mutation hooks draw from their own streams so that they are deterministic per call sequence.
        self._mut_rng = np.random.default_rng([seed, 2])
        self._mut_py = random.Random(f"{seed}:mutations")

    # ---- time ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    # ---- truth, shaped exactly as the API returns it -----------------------------------------

    def locations(self) -> list[dict[str, Any]]:
        with self.lock:
            return [loc.render() for loc in sorted(self._locations, key=lambda loc: (loc.name, loc.id))]

    def catalog_objects(
        self, include_deleted: bool = True, last_live_data: bool = False
    ) -> list[dict[str, Any]]:
        """The catalog as served; with `last_live_data`, tombstones carry the data they had when deleted."""
        with self.lock:
            return [
                self.catalog.render(rec, full_tombstone=last_live_data)
                for rec in self.catalog.records.values()
                if include_deleted or not rec.is_deleted
            ]

    def iter_orders(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            rows = self.orders.visible_rows(self.now_ms())
        for i in range(0, len(rows), _ITER_CHUNK):
            with self.lock:
                chunk = self.orders.render(rows[i : i + _ITER_CHUNK])
            yield from chunk

    def order_count(self) -> int:
        with self.lock:
            return int(np.count_nonzero(self.orders.col("visible") <= self.now_ms()))

    def order_ids_updated_between(self, start: datetime, end: datetime) -> set[str]:
        """Ids of visible orders whose updated_at is in [start, end], both inclusive."""
        lo, hi = us_ceil_ms(datetime_to_us(start)), us_floor_ms(datetime_to_us(end))
        with self.lock:
            updated = self.orders.col("updated")
            mask = (self.orders.col("visible") <= self.now_ms()) & (updated >= lo) & (updated <= hi)
            return set(self.orders.ids(np.flatnonzero(mask)))

    def order(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            return self.orders.render(np.array([self.orders.row_of(order_id)]))[0]

    def inventory_counts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.inventory.render(k) for k in self.inventory.select(None, None, None, None)]

    # ---- mutation hooks -----------------------------------------------------------------------

    def update_orders(self, count: int | None = None, ids: list[str] | None = None) -> list[str]:
        """Update orders now: version + 1, updated_at = now, new line items, OPEN ones may close."""
        if (count is None) == (ids is None):
            raise ValueError("give exactly one of count or ids")
        with self.lock:
            if ids is not None:
                rows = np.array([self.orders.row_of(i) for i in ids], dtype=np.int64)
            else:
                visible = self.orders.visible_rows(self.now_ms())
                rows = self._mut_rng.choice(visible, size=min(count or 0, len(visible)), replace=False)
            self.orders.update(rows, self.now_ms(), self._mut_rng)
            return self.orders.ids(np.unique(rows))

    def add_orders(self, count: int, location_id: str | None = None) -> list[str]:
        """New orders created now, at one location or spread over the ACTIVE ones."""
        with self.lock:
            loc_rows = self._location_rows(count, location_id)
            stamp = self.now_ms()
            times = np.full(count, stamp, dtype=np.int64)
            rows = self.orders.add(count, loc_rows, times, times, stamp, self._mut_rng)
            return self.orders.ids(rows)

    def add_late_orders(
        self, count: int, hours_late: float = 48, location_id: str | None = None
    ) -> list[str]:
        """Offline POS orders uploaded now: created/updated `hours_late` ago, visible only from now on."""
        with self.lock:
            loc_rows = self._location_rows(count, location_id)
            stamp = self.now_ms()
            created = stamp - int(hours_late * 3_600_000) - self._mut_rng.integers(0, 60_000, count)
            updated = created + self._mut_rng.integers(0, 120_000, count)
            state = np.full(count, 1, dtype=np.int8)  # an offline sale is uploaded once it is paid
            rows = self.orders.add(count, loc_rows, created, updated, stamp, self._mut_rng, state=state)
            return self.orders.ids(rows)

    def _location_rows(self, count: int, location_id: str | None) -> np.ndarray:
        if location_id is not None:
            for k, loc in enumerate(self._locations):
                if loc.id == location_id:
                    return np.full(count, k, dtype=np.int16)
            raise KeyError(f"no location {location_id!r}")
        active = [k for k, loc in enumerate(self._locations) if loc.status == "ACTIVE"]
        return self._mut_rng.choice(np.array(active, dtype=np.int16), size=count)

    def add_location(self, name: str | None = None, status: str = "ACTIVE") -> str:
        with self.lock:
            merchant = self._locations[0].merchant_id
            loc = make_location(
                self._mut_py, len(self._locations), merchant, self.now_ms(), name=name, status=status
            )
            self._locations.append(loc)
            return loc.id

    def set_location_status(self, location_id: str, status: str) -> None:
        if status not in ("ACTIVE", "INACTIVE"):
            raise ValueError(f"bad location status {status!r}")
        with self.lock:
            for loc in self._locations:
                if loc.id == location_id:
                    loc.status = status
                    return
            raise KeyError(f"no location {location_id!r}")

    def update_catalog_object(self, object_id: str, **changes: Any) -> None:
        """Change an object now. Keys: name, sku, price_amount, price_currency (variations);
        category_id, is_archived (items); parent_category_id (categories)."""
        with self.lock:
            self.catalog.update(object_id, self.now_ms(), changes)

    def delete_catalog_object(self, object_id: str) -> list[str]:
        with self.lock:
            return self.catalog.delete(object_id, self.now_ms())

    def add_catalog_item(self, name: str, category_id: str | None = None, variations: int = 1) -> list[str]:
        """Returns the item id followed by its variation ids."""
        with self.lock:
            return self.catalog.add_item(name, category_id, variations, self.now_ms())

    def set_inventory_count(
        self, catalog_object_id: str, location_id: str, state: str, quantity: str
    ) -> None:
        if state not in INVENTORY_STATES:
            raise ValueError(f"bad inventory state {state!r}")
        with self.lock:
            self.catalog.get(catalog_object_id)
            if not any(loc.id == location_id for loc in self._locations):
                raise KeyError(f"no location {location_id!r}")
            self.inventory.put((catalog_object_id, location_id, state), str(quantity), self.now_ms())

    def put_inventory_count(self, key: tuple[str, str, str], quantity: str) -> None:
        """A count calculated now, its catalog object and location taken as given (ids at Square's limits)."""
        with self.lock:
            self.inventory.put(key, quantity, self.now_ms())

    def random_edit(self, endpoint: str) -> str:
        """One random change of what `endpoint` serves (a variation's price, a count, an order); its id."""
        with self.lock:
            if endpoint == "catalog_search":
                live = sorted(
                    r.id
                    for r in self.catalog.records.values()
                    if r.type == "ITEM_VARIATION" and not r.is_deleted
                )
                if not live:
                    return ""
                object_id = self._mut_py.choice(live)
                self.update_catalog_object(object_id, price_amount=self._mut_py.randrange(50, 300) * 5)
                return object_id
            if endpoint == "inventory_counts":
                keys = sorted(self.inventory.counts)
                if not keys:
                    return ""
                key = self._mut_py.choice(keys)
                self.inventory.put(key, str(self._mut_py.randrange(0, 200)), self.now_ms())
                return "/".join(key)
            if endpoint == "orders_search":
                return self.update_orders(count=1)[0] if self.order_count() else ""
            raise ValueError(f"no random edit for {endpoint!r}")

    def after_page(
        self, endpoint: str, page: int, callback: Callable[[], object], *, repeat: bool = False
    ) -> PageHook:
        """Run `callback` once the `page`-th page of `endpoint` from now on is rendered, before it is sent.

        The client gets that page as it stood before the callback, and cannot
        request the next one until the callback returns: edit data there (and
        move a `ManualClock` on) to change the source at an exact point of a
        sync. With `repeat`, also after every `page`-th page after that.
        Endpoints are those of `faults.ENDPOINTS`; `PageHook.assert_ran()`
        says whether it ran and re-raises what it raised.
        """
        return self.hooks.add(endpoint, page, callback, repeat=repeat)

    def corrupt_order(self, order_id: str, field: str, value: object) -> None:
        """Make one order malformed as served: value None removes the field; dotted paths reach line items.

        The corruption lasts until the order is next updated.
        """
        with self.lock:
            self.orders.corrupt(self.orders.row_of(order_id), field, value)

    def corrupt_inventory_count(self, key: tuple[str, str, str], quantity: str) -> None:
        """Serve one count with this quantity (say "lots") where it stands: its calculated_at stays.

        `key` is (catalog object, location, state); the next `set_inventory_count` repairs it.
        """
        with self.lock:
            self.inventory.counts[key].quantity = quantity

    def expire_cursors(self) -> None:
        """Expire every outstanding cursor at once (as if the TTL had passed)."""
        self.cursors.invalidate()

    def set_access_token(self, token: str) -> None:
        """Rotate the accepted token: requests with the old one get 401 from now on."""
        self.config.access_token = token

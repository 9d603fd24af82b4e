"""Orders as numpy columns, rendered to Square's JSON on demand.

A million order dicts would cost gigabytes; a million rows of a few integer
columns cost ~45 MB. Everything else an order shows (its id, line items,
uids, quantities, prices, totals) is derived from (seed, row, version) by
hashing, so a page is rebuilt identically whenever it is asked for. A small
overlay holds the deliberately corrupted records tests ask for.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .catalog import VariationPool
from .generator import SALT_LINE, OrderIdCodec, hash_keys, line_uids
from .locations import LocationRecord
from .timefmt import format_ms_many

STATES = ("OPEN", "COMPLETED", "CANCELED", "DRAFT")
STATE_CODE = {name: code for code, name in enumerate(STATES)}
OPEN, COMPLETED, CANCELED = 0, 1, 2
CLOSED_STATES = frozenset({"COMPLETED", "CANCELED"})
NO_TIME = -1
TIME_COLUMN = {"CREATED_AT": "created", "UPDATED_AT": "updated", "CLOSED_AT": "closed"}

_COLUMNS: dict[str, type] = {
    "loc": np.int16,  # index into the location list
    "created": np.int64,  # epoch ms
    "updated": np.int64,
    "closed": np.int64,  # NO_TIME while OPEN
    "visible": np.int64,  # epoch ms from which the order exists at the source (late offline orders)
    "version": np.int32,
    "state": np.int8,
    "nlines": np.int8,
    "pool_n": np.int32,  # variation-pool prefix this version's line items draw from
}

# Quantities in tenths: mostly whole units, sometimes weighed/fractional ones.
_QTY_TENTHS = np.array([10, 10, 10, 10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 40, 5, 25], dtype=np.int64)
_REMOVE = object()

# JSON templates: every interpolated value is a number, a fixed token (ids, uids, currency,
# state, timestamps, all plain ASCII) or already JSON-encoded (names).
_LINE = (
    '{"uid":"%s",%s,"quantity":"%s","base_price_money":{"amount":%d,"currency":"%s"},'
    '"gross_sales_money":{"amount":%d,"currency":"%s"},"total_tax_money":{"amount":%d,"currency":"%s"},'
    '"total_discount_money":{"amount":0,"currency":"%s"},"total_money":{"amount":%d,"currency":"%s"}}'
)
_CUSTOM_HEAD = '"name":"Custom Amount","item_type":"CUSTOM_AMOUNT"'
_ORDER = (
    '{"id":"%s","location_id":"%s","source":{"name":"Square Point of Sale"},"line_items":[%s],'
    '"state":"%s","version":%d,"created_at":"%s","updated_at":"%s"%s,'
    '"total_money":{"amount":%d,"currency":"%s"},"total_tax_money":{"amount":%d,"currency":"%s"},'
    '"total_discount_money":{"amount":0,"currency":"%s"},"total_tip_money":{"amount":0,"currency":"%s"},'
    '"total_service_charge_money":{"amount":0,"currency":"%s"}}'
)


def _quantity_text(tenths: int) -> str:
    whole, frac = divmod(tenths, 10)
    return f"{whole}.{frac}" if frac else str(whole)


_QTY_TEXT = {int(t): _quantity_text(int(t)) for t in set(_QTY_TENTHS.tolist())}


class OrderStore:
    def __init__(self, seed: int, locations: list[LocationRecord], pool: VariationPool) -> None:
        self.seed = seed
        self.codec = OrderIdCodec(seed)
        self.locations = locations
        self.pool = pool
        self.n = 0
        self._cols: dict[str, np.ndarray] = {name: np.empty(0, dtype=dt) for name, dt in _COLUMNS.items()}
        self.overlay: dict[int, dict[str, Any]] = {}
        # Binomial p giving line counts 1..5 with the configured average.
        self.lines_p = 0.5
        # Every row in result order per (time column, ascending), rebuilt after a change: a client
        # that starts a new query for every page must not cost a sort of the whole table each time.
        self._changes = 0
        self._orders: dict[tuple[str, bool], tuple[int, np.ndarray, np.ndarray]] = {}

    # ---- storage ----------------------------------------------------------------------------

    def col(self, name: str) -> np.ndarray:
        """A live view of one column over the rows that exist."""
        return self._cols[name][: self.n]

    def append(self, **values: np.ndarray) -> np.ndarray:
        count = len(values["created"])
        need = self.n + count
        capacity = len(self._cols["created"])
        if need > capacity:
            # Geometric growth: adding orders one at a time stays amortised O(1).
            capacity = max(need, capacity * 2, 1024)
            for name, arr in self._cols.items():
                grown = np.empty(capacity, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self._cols[name] = grown
        for name in _COLUMNS:
            self._cols[name][self.n : need] = values[name]
        rows = np.arange(self.n, need, dtype=np.int64)
        self.n = need
        self._changes += 1
        return rows

    def _sorted(self, column: str, ascending: bool) -> tuple[np.ndarray, np.ndarray]:
        """All rows in result order (ties in row order, both ways) and their keys, ascending either way."""
        cached = self._orders.get((column, ascending))
        if cached is None or cached[0] != self._changes:
            key = self.col(column)
            order = np.argsort(key if ascending else -key, kind="stable")
            keys = key[order] if ascending else -key[order]
            cached = (self._changes, order, keys)
            self._orders[(column, ascending)] = cached
        return cached[1], cached[2]

    # ---- generation -------------------------------------------------------------------------

    def generate(
        self, count: int, now_ms: int, history_ms: int, lines_avg: float, rng: np.random.Generator
    ) -> None:
        if count <= 0:
            return
        n_loc = len(self.locations)
        weights = rng.gamma(2.0, 1.0, n_loc)
        loc = rng.choice(n_loc, size=count, p=weights / weights.sum()).astype(np.int16)
        inactive = np.array([loc_rec.status == "INACTIVE" for loc_rec in self.locations])
        u = rng.random(count)
        # Inactive locations stopped trading: their orders are in the older part of the history.
        u = np.where(inactive[loc], u * 0.6, u)
        start = now_ms - history_ms
        created = start + (u * history_ms).astype(np.int64)
        created = np.where(rng.random(count) < 0.3, created - created % 1000, created)

        kind = rng.random(count)
        minutes = rng.exponential(10 * 60_000, count)
        days = rng.exponential(86_400_000, count)
        delta = np.where(kind < 0.1, 0, np.where(kind < 0.75, minutes, days)).astype(np.int64)
        updated = np.maximum(np.minimum(created + delta, now_ms), created)
        whole = updated - updated % 1000
        updated = np.where((rng.random(count) < 0.3) & (whole >= created), whole, updated)
        touched = updated > created
        version = (
            1
            + touched
            + touched * rng.integers(0, 2, count)
            + (updated - created > 3_600_000) * rng.integers(1, 4, count)
        ).astype(np.int32)

        r = rng.random(count)
        recent = (now_ms - created) < 3 * 3_600_000
        state = np.where(
            recent,
            np.where(r < 0.5, OPEN, np.where(r < 0.95, COMPLETED, CANCELED)),
            np.where(r < 0.08, OPEN, np.where(r < 0.92, COMPLETED, CANCELED)),
        ).astype(np.int8)
        # Most orders close with their last update; some were updated after closing.
        frac = np.where(rng.random(count) < 0.7, 1.0, rng.random(count))
        closed_at = created + ((updated - created) * frac).astype(np.int64)
        closed = np.where(state == OPEN, NO_TIME, closed_at)

        self.lines_p = float(np.clip((lines_avg - 1) / 4, 0.0, 1.0))
        nlines = self._line_counts(count, rng)
        self.append(
            loc=loc,
            created=created,
            updated=updated,
            closed=closed,
            visible=np.zeros(count, dtype=np.int64),
            version=version,
            state=state,
            nlines=nlines,
            pool_n=np.full(count, len(self.pool), dtype=np.int32),
        )

    def _line_counts(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return (1 + rng.binomial(4, self.lines_p, count)).astype(np.int8)

    # ---- identity ---------------------------------------------------------------------------

    def ids(self, rows: np.ndarray) -> list[str]:
        return self.codec.encode(rows)

    def row_of(self, order_id: str) -> int:
        row = self.codec.decode(order_id)
        if row is None or row >= self.n:
            raise KeyError(f"no order {order_id!r}")
        return row

    # ---- queries ----------------------------------------------------------------------------

    def visible_rows(self, at_ms: int) -> np.ndarray:
        return np.flatnonzero(self.col("visible") <= at_ms)

    def select(
        self,
        location_rows: Sequence[int],
        states: Sequence[int] | None,
        sort_field: str,
        ascending: bool,
        start_ms: int | None,
        end_ms: int | None,
        at_ms: int,
    ) -> np.ndarray:
        """Rows matching a SearchOrders query as it stands at `at_ms`, in result order."""
        column = TIME_COLUMN[sort_field]
        order, keys = self._sorted(column, ascending)
        # The time range is a slice of the sorted order (keys are ascending, negated when descending).
        low, high = start_ms, end_ms
        if not ascending:
            low, high = (None if end_ms is None else -end_ms), (None if start_ms is None else -start_ms)
        first = 0 if low is None else int(np.searchsorted(keys, low, "left"))
        last = len(keys) if high is None else int(np.searchsorted(keys, high, "right"))
        rows = order[first:last]
        mask = self._cols["visible"][rows] <= at_ms
        mask &= np.isin(self._cols["loc"][rows], np.asarray(location_rows, dtype=np.int16))
        if states is not None:
            mask &= np.isin(self._cols["state"][rows], np.asarray(states, dtype=np.int8))
        if sort_field == "CLOSED_AT":
            mask &= self._cols["closed"][rows] != NO_TIME
        return rows[mask]

    # ---- rendering --------------------------------------------------------------------------

    def render(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Orders as dicts; parsed from `render_json` so both can never disagree."""
        texts = self.render_json(rows)
        return json.loads("[" + ",".join(texts) + "]") if texts else []

    def render_json(self, rows: np.ndarray) -> list[str]:
        """Orders as compact JSON texts, one per row.

        Writing the JSON text directly is about twice as fast as building
        dicts and serialising them, which is what keeps a 1000-order page
        well under the benchmark's budget.
        """
        rows = np.asarray(rows, dtype=np.int64)
        m = len(rows)
        if m == 0:
            return []
        c = self._cols
        loc = c["loc"][rows].astype(np.int64)
        nl = c["nlines"][rows].astype(np.int64)
        version = c["version"][rows]
        state = c["state"][rows]
        closed = c["closed"][rows]

        starts = np.cumsum(nl) - nl
        owner = np.repeat(np.arange(m), nl)
        slot = np.arange(int(nl.sum())) - starts[owner]
        line_rows = rows[owner]
        h = hash_keys(self.seed, SALT_LINE, line_rows, slot, version[owner])
        pool_n = c["pool_n"][rows][owner].astype(np.int64)
        has_item = pool_n > 0
        pick = (h % np.maximum(pool_n, 1).astype(np.uint64)).astype(np.int64)
        if len(self.pool):
            price = np.where(has_item, self.pool.price_array[np.minimum(pick, len(self.pool) - 1)], 0)
        else:
            price = np.zeros(len(pick), dtype=np.int64)
        # Custom-amount lines (no catalog yet) get a hashed price.
        price = np.where(has_item, price, 100 + ((h >> np.uint64(20)) % np.uint64(2000)).astype(np.int64))
        qty = _QTY_TENTHS[((h >> np.uint64(40)) % np.uint64(len(_QTY_TENTHS))).astype(np.int64)]
        gross = (price * qty + 5) // 10
        tax_bp = np.array([loc_rec.tax_rate_bp for loc_rec in self.locations], dtype=np.int64)
        tax = (gross * tax_bp[loc][owner] + 5000) // 10000
        total = gross + tax
        order_tax = np.add.reduceat(tax, starts).tolist()
        order_total = np.add.reduceat(total, starts).tolist()

        ids = self.codec.encode(rows)
        uids = line_uids(self.seed, line_rows, slot)
        created_s = format_ms_many(c["created"][rows])
        updated_s = format_ms_many(c["updated"][rows])
        closed_s = format_ms_many(np.where(closed == NO_TIME, 0, closed))
        loc_ids = [loc_rec.id for loc_rec in self.locations]
        currencies = [loc_rec.currency for loc_rec in self.locations]
        heads = self.pool.line_heads()
        loc_list = loc.tolist()

        lines: list[str] = []
        for has, p, q, pr, g, t, tot, uid, o in zip(
            has_item.tolist(),
            pick.tolist(),
            qty.tolist(),
            price.tolist(),
            gross.tolist(),
            tax.tolist(),
            total.tolist(),
            uids,
            owner.tolist(),
            strict=True,
        ):
            cur = currencies[loc_list[o]]
            lines.append(
                _LINE
                % (
                    uid,
                    heads[p] if has else _CUSTOM_HEAD,
                    _QTY_TEXT[q],
                    pr,
                    cur,
                    g,
                    cur,
                    t,
                    cur,
                    cur,
                    tot,
                    cur,
                )
            )

        out: list[str] = []
        state_list = state.tolist()
        version_list = version.tolist()
        start_list = starts.tolist()
        nl_list = nl.tolist()
        overlay = self.overlay
        for k, row in enumerate(rows.tolist()):
            li = loc_list[k]
            cur = currencies[li]
            st = state_list[k]
            first = start_list[k]
            text = _ORDER % (
                ids[k],
                loc_ids[li],
                ",".join(lines[first : first + nl_list[k]]),
                STATES[st],
                version_list[k],
                created_s[k],
                updated_s[k],
                f',"closed_at":"{closed_s[k]}"' if st in (COMPLETED, CANCELED) else "",
                order_total[k],
                cur,
                order_tax[k],
                cur,
                cur,
                cur,
                cur,
            )
            if row in overlay:
                order = json.loads(text)
                _apply_overlay(order, overlay[row])
                text = json.dumps(order, separators=(",", ":"))
            out.append(text)
        return out

    def render_entries(self, rows: np.ndarray) -> list[dict[str, Any]]:
        rows = np.asarray(rows, dtype=np.int64)
        ids = self.codec.encode(rows)
        loc_ids = [loc_rec.id for loc_rec in self.locations]
        out = []
        for order_id, li, ver, row in zip(
            ids,
            self._cols["loc"][rows].tolist(),
            self._cols["version"][rows].tolist(),
            rows.tolist(),
            strict=True,
        ):
            entry: dict[str, Any] = {"order_id": order_id, "location_id": loc_ids[li], "version": ver}
            if row in self.overlay:
                # An entry shows the same corruption as the full order would.
                patch = self.overlay[row]
                for src, dst in (("id", "order_id"), ("location_id", "location_id"), ("version", "version")):
                    if src in patch:
                        if patch[src] is _REMOVE:
                            entry.pop(dst, None)
                        else:
                            entry[dst] = copy.deepcopy(patch[src])
            out.append(entry)
        return out

    # ---- mutations --------------------------------------------------------------------------

    def update(self, rows: np.ndarray, now_ms: int, rng: np.random.Generator) -> None:
        c = self._cols
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        k = len(rows)
        if k == 0:
            return
        self._changes += 1
        c["version"][rows] += 1
        updated = np.maximum(now_ms, c["updated"][rows] + 1)
        c["updated"][rows] = updated
        state = c["state"][rows]
        r = rng.random(k)
        was_open = state == OPEN
        new_state = np.where(
            was_open & (r < 0.7), COMPLETED, np.where(was_open & (r < 0.85), CANCELED, state)
        )
        c["closed"][rows] = np.where((new_state != OPEN) & was_open, updated, c["closed"][rows])
        c["state"][rows] = new_state
        # Line items are re-derived from the new version; sometimes their count changes too.
        change = rng.random(k) < 0.3
        c["nlines"][rows] = np.where(change, self._line_counts(k, rng), c["nlines"][rows]).astype(np.int8)
        c["pool_n"][rows] = len(self.pool)
        for row in rows.tolist():
            self.overlay.pop(row, None)

    def add(
        self,
        count: int,
        loc_rows: np.ndarray,
        created_ms: np.ndarray,
        updated_ms: np.ndarray,
        visible_ms: int,
        rng: np.random.Generator,
        state: np.ndarray | None = None,
    ) -> np.ndarray:
        if state is None:
            state = np.where(rng.random(count) < 0.3, OPEN, COMPLETED).astype(np.int8)
        closed = np.where(state == OPEN, NO_TIME, updated_ms)
        return self.append(
            loc=loc_rows,
            created=created_ms,
            updated=updated_ms,
            closed=closed,
            visible=np.full(count, visible_ms, dtype=np.int64),
            version=np.ones(count, dtype=np.int32),
            state=state,
            nlines=self._line_counts(count, rng),
            pool_n=np.full(count, len(self.pool), dtype=np.int32),
        )

    def corrupt(self, row: int, field: str, value: object) -> None:
        self.overlay.setdefault(row, {})[field] = _REMOVE if value is None else value


def _apply_overlay(order: dict[str, Any], patch: dict[str, Any]) -> None:
    for path, value in patch.items():
        # Dotted paths reach into line items: "line_items.0.quantity".
        parts = path.split(".")
        target: Any = order
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        last = parts[-1]
        if isinstance(target, list):
            if value is _REMOVE:
                del target[int(last)]
            else:
                target[int(last)] = copy.deepcopy(value)
        elif value is _REMOVE:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)

"""Warehouse reads and writes of the Square sync (SQLAlchemy Core, the bulk upsert and COPY).

Functions that write take the caller's connection, so the caller decides what
commits together: a page or batch of pages with the watermark that covers it.
Records the warehouse refuses go to `rejected_records` (`write_quarantining`),
and a record written later leaves it (`Quarantine.release`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from logikal_square_sync.common.records import json_text
from logikal_square_sync.warehouse import quarantine
from logikal_square_sync.warehouse.quarantine import Candidate, Rejection
from logikal_square_sync.warehouse.state import get_watermark, get_watermarks, set_watermark, set_watermarks
from logikal_square_sync.warehouse.tables import square_locations, square_order_line_items, square_orders
from logikal_square_sync.warehouse.upsert import UpsertResult, insert_rows, key_filter, upsert

SOURCE = "Square"
Row = dict[str, Any]
R = TypeVar("R")
T = TypeVar("T")
# What a catalog tombstone always says; every other column keeps its last known value where it is silent.
_TOMBSTONE_FIELDS = frozenset({"id", "version", "updated_at", "is_deleted", "synced_at"})
# How many ids one lookup of stored orders asks for.
_LOOKUP_CHUNK = 1000


# --- watermarks (`sync_state`) ---------------------------------------------------------


def read_watermarks(engine: sa.Engine, *streams: str) -> list[str | None]:
    """The watermarks of `streams`, in their order, read together."""
    with engine.connect() as conn:
        return [get_watermark(conn, stream) for stream in streams]


def read_watermarks_under(engine: sa.Engine, prefix: str) -> dict[str, str | None]:
    """Every stream under `prefix`, by its full name."""
    with engine.connect() as conn:
        return get_watermarks(conn, prefix)


def move_watermark(conn: sa.Connection, stream: str, watermark: str) -> None:
    set_watermark(conn, stream, watermark)


def move_watermarks(conn: sa.Connection, watermarks: Mapping[str, str]) -> None:
    set_watermarks(conn, dict(watermarks))


# --- the quarantine (`rejected_records`) ------------------------------------------------


class Quarantine:
    """Square's records in `rejected_records`, read once per run: nothing to look up while it is empty."""

    def __init__(self, engine: sa.Engine) -> None:
        self._held = quarantine.quarantined_ids(engine, SOURCE)

    def release(self, conn: sa.Connection, object_type: str, record_ids: Iterable[str]) -> None:
        """Takes the written records of `object_type` out of quarantine, in the writing transaction."""
        # The ids stay as read: the transaction may still roll back, and deleting twice is harmless.
        held = self._held.get(object_type)
        if held:
            quarantine.release(conn, SOURCE, object_type, held.intersection(record_ids))


def row_candidate(object_type: str, record_id: str, record: R, table: sa.Table, row: Row) -> Candidate[R]:
    """A record written as one row of `table`, as the quarantine names it."""
    return Candidate(
        object_type,
        record_id,
        record,
        [(table, row)],
        lambda: json_text(row),
    )


def write_quarantining(
    engine: sa.Engine,
    records: Sequence[R],
    write: Callable[[sa.Connection, list[R]], T],
    candidate: Callable[[R], Candidate[R]],
    *,
    released: Callable[[sa.Connection, list[R]], None],
    rejected: Sequence[Rejection] = (),
) -> tuple[T, list[Rejection]]:
    """`write(conn, records)` in one transaction, without the records the warehouse refuses
    (`warehouse/quarantine.py`); returns what `write` returned and every rejection."""
    return quarantine.write_quarantining(
        engine, SOURCE, records, write, candidate, released=released, rejected=rejected
    )


# --- locations -------------------------------------------------------------------------


def upsert_locations(conn: sa.Connection, rows: list[Row]) -> UpsertResult:
    return upsert(conn, square_locations, rows)


def known_location_ids(engine: sa.Engine) -> list[str]:
    """The locations in the warehouse (what the completeness check compares)."""
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(square_locations.c.id).order_by(square_locations.c.id)).scalars())
    if not ids:
        raise RuntimeError("no Square locations in the warehouse yet: materialize square/locations first")
    return ids


# --- catalog and inventory -------------------------------------------------------------


@dataclass
class Changes:
    """Rows written by one upsert, by kind (`deleted`: tombstones written)."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0


def _with_last_known_attributes(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> list[Row]:
    """Tombstones with what the warehouse last knew wherever they carry nothing.

    A tombstone of an object never seen before keeps what it has. The upsert
    that follows still writes only tombstones newer than the stored row.
    """
    deleted = [row["id"] for row in rows if row["is_deleted"]]
    if not deleted:
        return rows
    attributes = [column for column in table.columns if column.name not in _TOMBSTONE_FIELDS]
    query = sa.select(table.c.id, *attributes).where(key_filter(conn, table.c.id, deleted))
    known = {stored.id: stored._mapping for stored in conn.execute(query)}
    merged = []
    for row in rows:
        stored = known.get(row["id"]) if row["is_deleted"] else None
        if stored is not None:
            row = {**row, **{c.name: stored[c.name] for c in attributes if row.get(c.name) is None}}
        merged.append(row)
    return merged


def upsert_catalog(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> Changes:
    """Catalog rows, a newer `version` winning; a tombstone keeps the attributes it does not carry."""
    result = upsert(conn, table, _with_last_known_attributes(conn, table, rows), newer_by=("version",))
    keys = set(result.written_keys)
    deleted = sum(1 for row in rows if row["is_deleted"] and (row["id"],) in keys)
    return Changes(result.inserted, result.updated, deleted)


def upsert_inventory_counts(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> Changes:
    """Inventory counts, a later `calculated_at` winning."""
    result = upsert(conn, table, rows, newer_by=("calculated_at",))
    return Changes(result.inserted, result.updated)


# --- orders ----------------------------------------------------------------------------


@dataclass
class OrdersWritten:
    inserted: int
    updated: int
    line_items: int
    newest: dict[str, datetime]  # by order time field: the newest `created_at` / `updated_at` written


def write_orders(
    conn: sa.Connection, orders: list[Row], line_items: Mapping[str, list[Row]], *, force: bool = False
) -> OrdersWritten | None:
    """Orders newer by (updated_at, version), or all with `force`; a rewritten order's line items replaced.

    `line_items` holds each order's line items by order id.
    """
    if not orders:
        return None
    result = upsert(conn, square_orders, orders, newer_by=("updated_at", "version"), overwrite=force)
    written_items = [item for key in result.written_keys for item in line_items[key[0]]]
    # A new order has no line items to replace: they cascade with their order.
    replaced = [key[0] for key in result.updated_keys]
    if replaced:
        items = square_order_line_items
        conn.execute(items.delete().where(key_filter(conn, items.c.order_id, replaced)))
    if written_items:
        insert_rows(conn, square_order_line_items, written_items)
    newest = {field: max(row[field] for row in orders) for field in ("created_at", "updated_at")}
    return OrdersWritten(result.inserted, result.updated, len(written_items), newest)


def stored_order_ids(engine: sa.Engine, ids: set[str]) -> set[str]:
    """Which of `ids` the warehouse holds."""
    found: set[str] = set()
    ordered = sorted(ids)
    with engine.connect() as conn:
        for i in range(0, len(ordered), _LOOKUP_CHUNK):
            chunk = ordered[i : i + _LOOKUP_CHUNK]
            found.update(
                conn.execute(sa.select(square_orders.c.id).where(square_orders.c.id.in_(chunk))).scalars()
            )
    return found

"""Square catalog (categories, items, variations) through SearchCatalogObjects.

Deleted objects are included and kept as tombstones (`is_deleted`). Square's
tombstones may carry little more than id, version and `updated_at`
(docs/square-api.md §7), so a tombstone updates `is_deleted`, `version`,
`updated_at` and `synced_at` and leaves every attribute it lacks (name, SKU,
price, parent) at the last value the warehouse knew.

The watermark is a time up to which every change is known to be in the
warehouse; the next run asks for changes after it minus `overlap_minutes`.
The results are unsorted, so a page's newest `updated_at` says nothing about
the pages still to come: the watermark moves only when the whole result has
been written, in the transaction of its last page. It never passes the run's
start minus the overlap, because edits made while the run reads may have
landed on pages already read. And if anything changed during the read (one
probe after the last page asks for changes since the run's start), it does
not move at all: whether a result set stays fixed while it is paged is
undocumented, and if it is re-evaluated, an edit can shift objects that did
not change onto pages already read. The next run reads that span again.
Every `full_refresh_days` (or with `full_refresh`) a run reads the whole
catalog, which repairs what an incremental run could not see. Since the
watermark moves only with the last page, pages are written several to a
transaction (`batches.py`), merged by id as upserts in turn would leave them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.policies import CatalogPolicy
from logikal_square_sync.square.engine.batches import BatchLimits, batched
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.full_refresh import sync_start
from logikal_square_sync.square.engine.pages import with_last_flag
from logikal_square_sync.square.engine.pipeline import Prefetched
from logikal_square_sync.square.engine.records import REJECTED, CatalogObject
from logikal_square_sync.square.engine.rows import category_row, item_row, variation_row
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.quarantine import (
    Candidate,
    Rejection,
    quarantined_ids,
    release,
    write_quarantining,
)
from logikal_square_sync.warehouse.state import set_watermark
from logikal_square_sync.warehouse.tables import (
    square_catalog_categories,
    square_catalog_items,
    square_catalog_variations,
)
from logikal_square_sync.warehouse.upsert import key_filter, upsert

WATERMARK = "square/catalog"
LAST_FULL_REFRESH = "square/catalog/full_refresh_at"
OBJECT_TYPES = ["ITEM", "ITEM_VARIATION", "CATEGORY"]  # variations must be asked for explicitly
# What a tombstone always says; every other column keeps its last known value where the tombstone is silent.
_TOMBSTONE_FIELDS = frozenset({"id", "version", "updated_at", "is_deleted", "synced_at"})
_TABLES = (square_catalog_categories, square_catalog_items, square_catalog_variations)
SOURCE = "Square"
# How `rejected_records` names each table's objects (as a malformed record names them).
OBJECT_TYPES_BY_TABLE = {
    square_catalog_categories: "catalog category",
    square_catalog_items: "catalog item",
    square_catalog_variations: "catalog item variation",
}
Row = dict[str, Any]
TableRow = tuple[sa.Table, Row]


@dataclass
class _Written:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    watermark_after: str | None = None
    changed_during_run: bool | None = None


def _candidate(record: TableRow) -> Candidate[TableRow]:
    table, row = record
    return Candidate(
        OBJECT_TYPES_BY_TABLE[table],
        row["id"],
        record,
        [record],
        lambda: orjson.dumps(row, default=str).decode(),
    )


@dataclass
class _Page:
    read: int
    rows: dict[sa.Table, list[dict[str, Any]]]
    is_last: bool
    moved_meanwhile: bool
    rejected: list[Rejection]


@dataclass
class _Batch:
    """Consecutive pages' rows by table and id: of each object the newest copy by version."""

    rows: dict[sa.Table, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {table: {} for table in _TABLES}
    )
    read: int = 0
    pages: int = 0
    last: bool = False
    moved_meanwhile: bool = False
    newest: datetime | None = None  # the newest updated_at of every copy read
    # The newest version of each object put into this run's batches so far, shared by them: a copy
    # no newer than one an earlier batch holds would not be written (a variation comes both nested
    # in its item and on its own), so it is dropped here instead of being sent to be refused.
    seen: dict[sa.Table, dict[str, int]] = field(default_factory=lambda: {table: {} for table in _TABLES})
    rejected: list[Rejection] = field(default_factory=list)  # records that failed validation

    @property
    def size(self) -> int:
        return sum(len(by_id) for by_id in self.rows.values())

    def add(self, page: _Page) -> bool:
        # A tombstone of an object the batch already holds takes what it lacks from the stored row,
        # which must be the copy held here, written first: it starts a batch of its own.
        if self.pages and any(
            row["is_deleted"] and row["id"] in self.rows[table]
            for table, rows in page.rows.items()
            for row in rows
        ):
            return False
        newest = self.newest
        for table, rows in page.rows.items():
            held, seen = self.rows[table], self.seen[table]
            for row in rows:
                if newest is None or row["updated_at"] > newest:
                    newest = row["updated_at"]
                object_id, version = row["id"], row["version"]
                current = held.get(object_id)
                if current is None:
                    if seen.get(object_id, -1) >= version:
                        continue
                # Ties keep the copy read first: the upsert writes only a strictly newer one.
                elif version <= current["version"]:
                    continue
                held[object_id] = row
                seen[object_id] = version
        self.newest = newest
        self.read += page.read
        self.pages += 1
        self.last = page.is_last
        self.moved_meanwhile = page.moved_meanwhile
        self.rejected += page.rejected
        return True


def _rows_of_page(objects: list[CatalogObject], synced_at: datetime) -> dict[sa.Table, list[dict[str, Any]]]:
    by_table: dict[sa.Table, dict[str, dict[str, Any]]] = {table: {} for table in _TABLES}

    def keep_newest(table: sa.Table, row: dict[str, Any]) -> None:
        # A variation comes both nested in its item and on its own: keep the newer copy.
        current = by_table[table].get(row["id"])
        if current is None or row["version"] > current["version"]:
            by_table[table][row["id"]] = row

    for obj in objects:
        kind = obj.type
        if kind == "CATEGORY":
            keep_newest(square_catalog_categories, category_row(obj, synced_at))
        elif kind == "ITEM":
            keep_newest(square_catalog_items, item_row(obj, synced_at))
            for variation in (obj.item_data.variations if obj.item_data else None) or ():
                keep_newest(square_catalog_variations, variation_row(variation, synced_at))
        elif kind == "ITEM_VARIATION":
            keep_newest(square_catalog_variations, variation_row(obj, synced_at))
    return {table: list(rows.values()) for table, rows in by_table.items()}


def _with_last_known_attributes(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
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


def _changed_since(client: SquareClient, moment: datetime) -> bool:
    """Whether any catalog object (deleted ones included) was modified after `moment`."""
    page = client.search_catalog_page(
        {
            "object_types": OBJECT_TYPES,
            "include_deleted_objects": True,
            "begin_time": format_timestamp(moment),
            "limit": 1,
        }
    )
    return bool(page.get("objects"))


def sync_catalog(
    client: SquareClient,
    engine: sa.Engine,
    policy: CatalogPolicy,
    *,
    full_refresh: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    run_started = now or utc_now()
    overlap = timedelta(minutes=policy.overlap_minutes)
    start = sync_start(
        engine,
        watermark_key=WATERMARK,
        last_full_refresh_key=LAST_FULL_REFRESH,
        full_refresh_days=policy.full_refresh_days,
        run_started=run_started,
        full_refresh=full_refresh,
    )
    watermark, full = start.watermark, start.full
    report = SyncReport(watermark_before=watermark, mode=start.mode)

    def body() -> dict[str, Any]:
        request: dict[str, Any] = {
            "object_types": OBJECT_TYPES,
            "include_deleted_objects": True,
            "limit": policy.page_size,
        }
        if not full and watermark:
            request["begin_time"] = format_timestamp(datetime.fromisoformat(watermark) - overlap)
        return request

    def prepared_pages() -> Iterator[_Page]:
        for page, is_last in with_last_flag(client.search_catalog(body)):
            objects = page.get("objects") or []
            rows_by_table = _rows_of_page(objects, utc_now())
            # After the last page is in: edits made since the run started show whether the read was still.
            moved_meanwhile = is_last and _changed_since(client, run_started - overlap)
            rejected = page.get(REJECTED) or []
            yield _Page(len(objects) + len(rejected), rows_by_table, is_last, moved_meanwhile, rejected)

    limits = BatchLimits(policy.rows_per_transaction, policy.seconds_per_transaction)
    newest: datetime | None = None
    quarantined = quarantined_ids(engine, SOURCE)

    def released(conn: sa.Connection, records: list[TableRow]) -> None:
        if not quarantined:  # read once per run: nothing to look up while the quarantine is empty
            return
        for table, object_type in OBJECT_TYPES_BY_TABLE.items():
            held = quarantined.get(object_type)
            if held:
                taken = held.intersection(row["id"] for written_to, row in records if written_to is table)
                release(conn, SOURCE, object_type, taken)

    def write(
        conn: sa.Connection, records: list[TableRow], *, last: bool, moved: bool, newest: datetime | None
    ) -> _Written:
        written = _Written()
        for table in _TABLES:
            rows = [row for written_to, row in records if written_to is table]
            result = upsert(
                conn, table, _with_last_known_attributes(conn, table, rows), newer_by=("version",)
            )
            written.inserted += result.inserted
            written.updated += result.updated
            keys = set(result.written_keys)
            written.deleted += sum(1 for row in rows if row["is_deleted"] and (row["id"],) in keys)
        if last:
            # The whole result is in: the watermark may move, atomically with its last page.
            written.changed_during_run = moved
            covered = None if moved or newest is None else min(newest, run_started - overlap)
            if covered is not None and (watermark is None or covered > datetime.fromisoformat(watermark)):
                written.watermark_after = format_timestamp(covered)
                set_watermark(conn, WATERMARK, written.watermark_after)
            if full:
                set_watermark(conn, LAST_FULL_REFRESH, format_timestamp(run_started))
        return written

    # Pages are fetched, decoded, turned into rows and merged into batches in a thread of their
    # own while this one writes each batch in one transaction.
    seen: dict[sa.Table, dict[str, int]] = {table: {} for table in _TABLES}
    for batch in Prefetched(
        lambda: batched(prepared_pages(), lambda: _Batch(seen=seen), limits),
        depth=1,
        name="square-catalog-decode",
    ):
        report.read += batch.read
        if batch.newest is not None and (newest is None or batch.newest > newest):
            newest = batch.newest
        (written, rejected) = write_quarantining(
            engine,
            SOURCE,
            [(table, row) for table, by_id in batch.rows.items() for row in by_id.values()],
            functools.partial(write, last=batch.last, moved=batch.moved_meanwhile, newest=newest),
            _candidate,
            released=released,
            rejected=batch.rejected,
        )
        report.inserted += written.inserted
        report.updated += written.updated
        report.deleted += written.deleted
        report.rejected += len(rejected)
        if written.changed_during_run is not None:
            report.extra["changed_during_run"] = written.changed_during_run
        report.watermark_after = written.watermark_after or report.watermark_after
        report.pages += batch.pages
    report.watermark_after = report.watermark_after or watermark
    return report.finish(client)

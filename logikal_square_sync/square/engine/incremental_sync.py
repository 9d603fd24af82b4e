"""The sync shape of the catalog and the inventory: what changed since a watermark, or everything.

A run reads everything when `full_refresh.sync_start` says so (asked for, no
watermark yet, or `full_refresh_days` since the last full read), else the
changes since the watermark minus the object's overlap. Pages are fetched,
decoded, turned into rows and merged into batches (`batches.py`) in a thread
of their own while this one writes each batch in one transaction. The
watermark, and the date of the last full refresh, move only with the last
page of the whole result, in the transaction of the batch that holds it: a
crash anywhere before leaves them where they were, and the next run reads the
span again, rewriting nothing it already holds. Records that fail validation,
and records the warehouse refuses, go to `rejected_records` with the rest of
their batch (`warehouse/quarantine.py`); a record written leaves it.

Each object plugs in its parts as an `IncrementalObject`: which call reads
it, which rows a page makes, how they are written, and how far the whole
result lets the watermark move.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.square.engine.batches import BatchLimits, batched
from logikal_square_sync.square.engine.client import Body, SquareClient
from logikal_square_sync.square.engine.full_refresh import sync_start
from logikal_square_sync.square.engine.pages import with_last_flag
from logikal_square_sync.square.engine.pipeline import Prefetched
from logikal_square_sync.square.engine.records import REJECTED
from logikal_square_sync.square.engine.store import (
    Changes,
    Quarantine,
    move_watermark,
    row_candidate,
    write_quarantining,
)
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.quarantine import Candidate, Rejection

Row = dict[str, Any]
TableRow = tuple[sa.Table, Row]
RowsByTable = dict[sa.Table, list[Row]]


@dataclass(frozen=True)
class Reading:
    """What a run has read once its last page is in: how far the watermark may move."""

    run_started: datetime
    overlap: timedelta
    newest: datetime | None  # the newest stamp of every row read
    newest_on_first_page: datetime | None  # the newest stamp on the run's first page
    changed_meanwhile: bool  # the probe after the last page found changes since the run started


@dataclass(frozen=True)
class IncrementalObject:
    """One object's parts of the sync: its call, its rows, its tables, its watermark rule."""

    watermark: str  # its `sync_state` stream, which also names its other streams and its decode thread
    # The tables written, in order, and how `rejected_records` names their rows.
    tables: Mapping[sa.Table, str]
    records: str  # the key under which a page holds its records
    newer_by: str  # the column by which, of two copies of a row, the greater is the newer
    stamped_by: str  # the column of the time each row was last changed at the source
    overlap: timedelta  # how far before the watermark an incremental read starts
    request: Callable[[int, datetime | None], Body]  # the first request: page size, changes since (or all)
    pages: Callable[[SquareClient, Callable[[], Body]], Iterator[Body]]  # the call, given the request
    rows: Callable[[list[Any], datetime], RowsByTable]  # a page's records as rows, given `synced_at`
    write: Callable[[sa.Connection, sa.Table, list[Row]], Changes]  # one table's rows of a batch
    covered: Callable[[Reading], datetime | None]  # where the watermark may move when the result is in
    # Asked after the last page, whether anything changed since the given time (`Reading.changed_meanwhile`).
    changed_since: Callable[[SquareClient, datetime], bool] | None = None
    # A tombstone of a row its batch already holds takes what it lacks from the stored row, which must be
    # the held copy, written first: such a page starts a batch of its own.
    tombstones_start_batches: bool = False
    # A copy no newer than one an earlier batch of the run held would not be written: dropped while batching.
    drops_copies_batched_before: bool = False

    @property
    def last_full_refresh(self) -> str:
        """The `sync_state` stream of the last full refresh's start."""
        return f"{self.watermark}/full_refresh_at"


@dataclass
class Page:
    read: int
    rows: RowsByTable
    is_last: bool
    changed_meanwhile: bool
    rejected: list[Rejection]


def _key_names(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


@dataclass
class RowBatch:
    """Consecutive pages' rows by table and key: of each row the newest copy, as upserts in turn keep."""

    kind: IncrementalObject
    # The newest copy of each row put into the run's batches so far (`drops_copies_batched_before`).
    batched_before: dict[sa.Table, dict[Hashable, Any]] | None = None
    keys: dict[sa.Table, Callable[[Row], Hashable]] = field(init=False)
    rows: dict[sa.Table, dict[Hashable, Row]] = field(init=False)
    read: int = 0
    pages: int = 0
    last: bool = False
    changed_meanwhile: bool = False
    newest: datetime | None = None
    newest_on_first_page: datetime | None = None
    rejected: list[Rejection] = field(default_factory=list)  # records that failed validation

    def __post_init__(self) -> None:
        self.keys = {table: operator.itemgetter(*_key_names(table)) for table in self.kind.tables}
        self.rows = {table: {} for table in self.kind.tables}

    @property
    def size(self) -> int:
        return sum(len(by_key) for by_key in self.rows.values())

    def add(self, page: Page) -> bool:
        if self.kind.tombstones_start_batches and self.pages and self._holds_a_tombstoned_row(page):
            return False
        stamped_by, newer_by = self.kind.stamped_by, self.kind.newer_by
        page_newest: datetime | None = None
        for table, rows in page.rows.items():
            held, key_of = self.rows[table], self.keys[table]
            before = self.batched_before[table] if self.batched_before is not None else None
            for row in rows:
                if page_newest is None or row[stamped_by] > page_newest:
                    page_newest = row[stamped_by]
                key, newness = key_of(row), row[newer_by]
                current = held.get(key)
                if current is None:
                    previous = before.get(key) if before is not None else None
                    if previous is not None and previous >= newness:
                        continue
                # Ties keep the copy read first: the upsert writes only a strictly newer one.
                elif newness <= current[newer_by]:
                    continue
                held[key] = row
                if before is not None:
                    before[key] = newness
        if self.pages == 0:
            self.newest_on_first_page = page_newest
        if page_newest is not None and (self.newest is None or page_newest > self.newest):
            self.newest = page_newest
        self.read += page.read
        self.pages += 1
        self.last = page.is_last
        self.changed_meanwhile = page.changed_meanwhile
        self.rejected += page.rejected
        return True

    def _holds_a_tombstoned_row(self, page: Page) -> bool:
        return any(
            row["is_deleted"] and self.keys[table](row) in self.rows[table]
            for table, rows in page.rows.items()
            for row in rows
        )

    def records(self) -> list[TableRow]:
        return [(table, row) for table, by_key in self.rows.items() for row in by_key.values()]


def batches_of(kind: IncrementalObject) -> Callable[[], RowBatch]:
    """New batches for one run: where copies batched before are dropped, the batches share them."""
    batched_before: dict[sa.Table, dict[Hashable, Any]] | None = (
        {table: {} for table in kind.tables} if kind.drops_copies_batched_before else None
    )
    return lambda: RowBatch(kind, batched_before)


def record_id(table: sa.Table, row: Row) -> str:
    """A row's id in `rejected_records`: its primary key, joined by '/'."""
    return "/".join(str(row[name]) for name in _key_names(table))


@dataclass
class _Written(Changes):
    watermark_after: str | None = None


class FullRefreshPolicy(Protocol):
    """What an incremental sync's policy says (`policies.yaml`, `CatalogPolicy`, `InventoryPolicy`)."""

    page_size: int
    rows_per_transaction: int
    seconds_per_transaction: float
    full_refresh_days: int


PolicyT = TypeVar("PolicyT", bound=FullRefreshPolicy)


class IncrementalSync(Generic[PolicyT]):
    """The sync of the object whose parts `parts(policy)` gives: a function of the client, the
    warehouse and the policy."""

    def __init__(self, parts: Callable[[PolicyT], IncrementalObject]) -> None:
        self._parts = parts

    def __call__(
        self,
        client: SquareClient,
        engine: sa.Engine,
        policy: PolicyT,
        *,
        full_refresh: bool = False,
        now: datetime | None = None,
    ) -> SyncReport:
        """Reads what changed since the last run, or everything when a full refresh is due or asked for."""
        return _sync(client, engine, self._parts(policy), policy, full_refresh=full_refresh, now=now)


def _sync(
    client: SquareClient,
    engine: sa.Engine,
    kind: IncrementalObject,
    policy: FullRefreshPolicy,
    *,
    full_refresh: bool,
    now: datetime | None,
) -> SyncReport:
    run_started = now or utc_now()
    start = sync_start(
        engine,
        watermark_key=kind.watermark,
        last_full_refresh_key=kind.last_full_refresh,
        full_refresh_days=policy.full_refresh_days,
        run_started=run_started,
        full_refresh=full_refresh,
    )
    watermark, full = start.watermark, start.full
    report = SyncReport(watermark_before=watermark, mode=start.mode)
    since = None if full or not watermark else datetime.fromisoformat(watermark) - kind.overlap

    def request() -> Body:
        return kind.request(policy.page_size, since)

    def prepared_pages() -> Iterator[Page]:
        for page, is_last in with_last_flag(kind.pages(client, request)):
            records = page.get(kind.records) or []
            rows = kind.rows(records, utc_now())
            # After the last page is in: edits made since the run started show whether the read was still.
            changed = (
                is_last
                and kind.changed_since is not None
                and kind.changed_since(client, run_started - kind.overlap)
            )
            rejected = page.get(REJECTED) or []
            yield Page(len(records) + len(rejected), rows, is_last, changed, rejected)

    quarantine = Quarantine(engine)

    def released(conn: sa.Connection, records: list[TableRow]) -> None:
        for table, object_type in kind.tables.items():
            ids = (record_id(table, row) for written_to, row in records if written_to is table)
            quarantine.release(conn, object_type, ids)

    def candidate(record: TableRow) -> Candidate[TableRow]:
        table, row = record
        return row_candidate(kind.tables[table], record_id(table, row), record, table, row)

    def write(conn: sa.Connection, records: list[TableRow], *, last: bool, reading: Reading) -> _Written:
        written = _Written()
        for table in kind.tables:
            changes = kind.write(conn, table, [row for written_to, row in records if written_to is table])
            written.inserted += changes.inserted
            written.updated += changes.updated
            written.deleted += changes.deleted
        if last:
            # The whole result is in: the watermark (and the refresh date) move with its last page.
            covered = kind.covered(reading)
            if covered is not None and (watermark is None or covered > datetime.fromisoformat(watermark)):
                written.watermark_after = format_timestamp(covered)
                move_watermark(conn, kind.watermark, written.watermark_after)
            if full:
                move_watermark(conn, kind.last_full_refresh, format_timestamp(run_started))
        return written

    limits = BatchLimits(policy.rows_per_transaction, policy.seconds_per_transaction)
    newest: datetime | None = None
    newest_at_start: datetime | None = None
    for batch in Prefetched(
        lambda: batched(prepared_pages(), batches_of(kind), limits),
        depth=1,
        name=f"{kind.watermark.replace('/', '-')}-decode",
    ):
        if report.pages == 0:
            newest_at_start = batch.newest_on_first_page
        if batch.newest is not None and (newest is None or batch.newest > newest):
            newest = batch.newest
        reading = Reading(run_started, kind.overlap, newest, newest_at_start, batch.changed_meanwhile)
        report.read += batch.read
        written, rejected = write_quarantining(
            engine,
            batch.records(),
            functools.partial(write, last=batch.last, reading=reading),
            candidate,
            released=released,
            rejected=batch.rejected,
        )
        report.inserted += written.inserted
        report.updated += written.updated
        report.deleted += written.deleted
        report.rejected += len(rejected)
        if batch.last and kind.changed_since is not None:
            report.extra["changed_during_run"] = batch.changed_meanwhile
        report.watermark_after = written.watermark_after or report.watermark_after
        report.pages += batch.pages
    report.watermark_after = report.watermark_after or watermark
    return report.finish(client)

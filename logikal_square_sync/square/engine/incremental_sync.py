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

Each object plugs in its parts as an `IncrementalObject` (`incremental_object.py`):
which call reads it, which rows a page makes, how they are written, and how far
the whole result lets the watermark move.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.progress import Progress
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.policies import policies
from logikal_square_sync.square.engine.batches import BatchLimits, batched
from logikal_square_sync.square.engine.client import Body, SquareClient
from logikal_square_sync.square.engine.full_refresh import sync_start
from logikal_square_sync.square.engine.incremental_object import IncrementalObject, Reading
from logikal_square_sync.square.engine.pages import with_last_flag
from logikal_square_sync.square.engine.pipeline import Prefetched
from logikal_square_sync.square.engine.records import REJECTED
from logikal_square_sync.square.engine.row_batches import Page, TableRow, batches_of, record_id
from logikal_square_sync.square.engine.store import (
    Changes,
    Quarantine,
    move_watermark,
    row_candidate,
    write_quarantining,
)
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.quarantine import Candidate

log = logging.getLogger(__name__)


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
    progress = Progress(log, kind.watermark, policies().progress, noun=kind.records)
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
        progress.note(report.pages, report.read)
    report.watermark_after = report.watermark_after or watermark
    return report.finish(client)

"""Square orders through SearchOrders, by groups of at most ten locations.

Each group is read by `updated_at` ascending up to an end fixed at run start,
so every committed page is a safe checkpoint: all orders of the group updated
before the page's last `updated_at` are in the warehouse. Each page is a query
of its own from where the previous one ended (`order_pages`), so a result set
that moves while it is read cannot skip an order. The per-location watermark
moves with each page, in the page's transaction. Each run starts a lookback
(>= 72 h) before the watermark, because offline POS orders arrive late with
an old `updated_at`. Locations without a watermark are grouped apart from
the others, so a new location's full history is not read for caught-up ones.
Newer wins by (updated_at, version), and an order's line items are replaced
whenever the order itself is rewritten.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.memory import release_free_memory
from logikal_square_sync.common.progress import Progress, TimeRanges
from logikal_square_sync.common.records import json_text
from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.policies import OrdersPolicy, policies
from logikal_square_sync.square.engine.client import Body, SquareClient, follow_cursor
from logikal_square_sync.square.engine.order_days import OrderDays, OrderTime
from logikal_square_sync.square.engine.pipeline import Prefetched
from logikal_square_sync.square.engine.records import NO_ID, REJECTED, Order, decode_orders_page
from logikal_square_sync.square.engine.rows import order_rows
from logikal_square_sync.square.engine.store import (
    OrdersWritten,
    Quarantine,
    move_watermark,
    move_watermarks,
    read_watermarks_under,
    write_orders,
    write_quarantining,
)
from logikal_square_sync.square.engine.timestamps import format_timestamp
from logikal_square_sync.warehouse.quarantine import Candidate, Rejection
from logikal_square_sync.warehouse.tables import square_order_line_items, square_orders

log = logging.getLogger(__name__)

LOCATION_WATERMARK = "square/orders/location/"
SYNCED_UNTIL = "square/orders/synced_until"
# How often a long sync hands freed heap memory back (`memory.py`): peak RSS at 1M orders.
TRIM_EVERY_PAGES = 20
# Decoded pages that may wait for the writer (each ~1,000 orders with their rows, a few MB).
PREPARED_PAGES_AHEAD = 3
OBJECT_TYPE = "order"


@dataclass(frozen=True)
class HistoryRefetch:
    """A backfill: re-read the orders of `days`, by their creation or last update.

    `force` rewrites every order read and replaces its line items even where
    the stored copy is as new, which repairs rows damaged in the warehouse.
    """

    days: OrderDays
    by: OrderTime = "created_at"
    force: bool = False

    def describe(self) -> str:
        return f"orders by {self.by} {self.days.describe()}" + (", forced rewrite" if self.force else "")


def source_location_ids(client: SquareClient) -> list[str]:
    """Every location Square has, inactive ones included: one ListLocations call (no paging).

    Asked of Square rather than read from `square_locations`, so the orders never wait for
    (or fail with) the locations sync, and a location opened today has its orders read tonight.
    """
    locations, rejected = client.list_locations()
    # A location the warehouse refused (quarantined by the locations sync) still sells: its orders
    # are read all the same, when its id could be told.
    ids = {location.id for location in locations}
    ids.update(r.record_id for r in rejected if not r.record_id.startswith(NO_ID))
    return sorted(ids)


def location_groups(
    location_ids: Sequence[str], watermarks: dict[str, str | None], size: int
) -> list[list[str]]:
    """Groups of at most `size` locations: those with a watermark by similar watermarks, the others apart.

    A group's query starts at its oldest member's watermark, and a location
    without one at `history_start`: grouped with caught-up locations, a new
    one would drag them back through all their history.
    """
    new = sorted(loc for loc in location_ids if not watermarks.get(loc))
    known = sorted(
        (loc for loc in location_ids if watermarks.get(loc)), key=lambda loc: (watermarks[loc], loc)
    )
    return [part[i : i + size] for part in (known, new) for i in range(0, len(part), size)]


def search_body(
    location_ids: list[str],
    start_at: datetime,
    end_at: datetime,
    page_size: int,
    *,
    by: OrderTime = "updated_at",
    return_entries: bool = False,
) -> dict[str, Any]:
    """A SearchOrders body for the orders whose `by` time is in [start_at, end_at], oldest first."""
    body: dict[str, Any] = {
        "location_ids": location_ids,
        "query": {
            "filter": {
                "date_time_filter": {
                    by: {"start_at": format_timestamp(start_at), "end_at": format_timestamp(end_at)}
                }
            },
            # The sort field must equal the filter field, or Square rejects the request.
            "sort": {"sort_field": by.upper(), "sort_order": "ASC"},
        },
        "limit": page_size,
    }
    if return_entries:
        body["return_entries"] = True
    return body


def order_pages(
    client: SquareClient,
    group: list[str],
    end_at: datetime,
    page_size: int,
    restart_at: Callable[[], datetime],
    *,
    by: OrderTime = "updated_at",
) -> Iterator[Body]:
    """The orders of `group` with `by` in [restart_at(), end_at], oldest first, a page at a time.

    Each page is a new query starting where the previous page ended, not that
    query's next cursor. Whether Square fixes a result set at its first page
    or evaluates it again for every page is undocumented (docs/square-api.md
    §3); if it does the latter, an order updated mid-run leaves the range and
    every order after it moves one place up, so the one at the next page's
    start would never be served. A new query has no pages before it to shift.
    The range is inclusive, so the orders at the page's last instant are held
    back and read again, whole, by the next query; only when one instant
    fills a whole page does the next page follow the cursor. `restart_at`
    gives the first query's start and, after an expired cursor there, the
    last committed checkpoint.
    """

    def body_from(start_at: datetime) -> Body:
        return search_body(group, start_at, end_at, page_size, by=by)

    def next_request(request: Body, page: Body) -> Body | None:
        orders = page.get("orders") or []
        if not page.get("cursor") or not orders:
            return follow_cursor(request, page)
        last = getattr(orders[-1], by)
        keep = len(orders) - 1
        while keep > 0 and getattr(orders[keep - 1], by) == last:
            keep -= 1
        if keep == 0:
            return follow_cursor(request, page)  # a new query from `last` would return this same page
        page["orders"] = orders[:keep]
        return body_from(last)

    return client.search_orders(lambda: body_from(restart_at()), next_request, decode=decode_orders_page)


# An order's row, its line items' rows, and the order as read (for the quarantine, if refused).
OrderRows = tuple[dict[str, Any], list[dict[str, Any]], Order]


@dataclass
class PreparedPage:
    """Pages turned into rows: the newest copy of each order with its line items."""

    read: int
    orders: dict[str, OrderRows]
    rejected: list[Rejection] = field(default_factory=list)  # records that failed validation
    pages: int = 1

    @property
    def rows(self) -> int:
        """How many rows writing it takes: the orders and their line items."""
        return sum(1 + len(items) for _row, items, _order in self.orders.values())

    def merge(self, later: PreparedPage) -> None:
        """Takes in a later page: of an order read on both (updated while the run read), the newer copy."""
        for order_id, order in later.orders.items():
            current = self.orders.get(order_id)
            if current is None or _newer(order[0], current[0]):
                self.orders[order_id] = order
        self.read += later.read
        self.rejected += later.rejected
        self.pages += later.pages


def _newer(row: dict[str, Any], than: dict[str, Any]) -> bool:
    # NULL (no version) sorts lowest.
    return (row["updated_at"], row["version"] or -1) > (than["updated_at"], than["version"] or -1)


def _prepare_page(
    orders: list[Order], synced_at: datetime, rejected: list[Rejection] | None = None
) -> PreparedPage:
    """Rows of a page's typed orders (checked when the page was decoded)."""
    newest_by_id: dict[str, OrderRows] = {}
    for order in orders:
        row, items = order_rows(order, synced_at)
        current = newest_by_id.get(row["id"])
        if current is None or _newer(row, current[0]):
            newest_by_id[row["id"]] = (row, items, order)
    return PreparedPage(len(orders) + len(rejected or ()), newest_by_id, rejected or [])


def _merged(pages: list[PreparedPage]) -> PreparedPage:
    merged = pages[0]
    for page in pages[1:]:
        merged.merge(page)
    return merged


def _candidate(order: OrderRows) -> Candidate[OrderRows]:
    row, items, record = order
    return Candidate(
        OBJECT_TYPE,
        row["id"],
        order,
        [(square_orders, row), *((square_order_line_items, item) for item in items)],
        lambda: json_text(record),
    )


def _sync_group(
    client: SquareClient,
    engine: sa.Engine,
    policy: OrdersPolicy,
    group: list[str],
    start_at: datetime,
    end_at: datetime,
    report: SyncReport,
    *,
    watermarks: dict[str, str | None] | None,
    by: OrderTime = "updated_at",
    force: bool = False,
    quarantine: Quarantine,
    page_done: Callable[[datetime], None],
) -> None:
    """Pages of one location group; `watermarks` None leaves them untouched (history re-fetch).

    Orders written are taken out of `quarantine`; `page_done` is told how far each page reached.
    """
    # Where an expired cursor restarts: the last committed page, never further.
    checkpoint = start_at

    def restart_at() -> datetime:
        return checkpoint

    def prepared_pages() -> Iterator[PreparedPage]:
        for page in order_pages(client, group, end_at, policy.page_size, restart_at, by=by):
            yield _prepare_page(page.get("orders") or [], utc_now(), page.get(REJECTED))

    def write(conn: sa.Connection, orders: list[OrderRows]) -> tuple[OrdersWritten | None, dict[str, str]]:
        rows = [order[0] for order in orders]
        line_items = {order[0]["id"]: order[1] for order in orders}
        written = write_orders(conn, rows, line_items, force=force)
        moved: dict[str, str] = {}
        if written is not None and watermarks is not None:
            mark = format_timestamp(written.newest["updated_at"])
            moved = {loc: mark for loc in group if (watermarks[loc] or "") < mark}
            move_watermarks(conn, {LOCATION_WATERMARK + loc: value for loc, value in moved.items()})
        return written, moved

    def released(conn: sa.Connection, orders: list[OrderRows]) -> None:
        quarantine.release(conn, OBJECT_TYPE, (order[0]["id"] for order in orders))

    def fits(batch: list[PreparedPage], page: PreparedPage) -> bool:
        return sum(p.rows for p in batch) + page.rows <= policy.rows_per_transaction

    # Pages are fetched, decoded and validated in a thread of their own while this one writes:
    # each transaction takes every page ready by then (up to `rows_per_transaction` rows), so a
    # writer that falls behind catches up in fewer commits. Each transaction checks a connection out
    # of the pool, whose ping replaces one the database dropped between pages (a restart, a failover).
    pages = Prefetched(prepared_pages, depth=PREPARED_PAGES_AHEAD, name="square-orders-decode")
    for batch in pages.batches(fits):
        if report.pages // TRIM_EVERY_PAGES != (report.pages + len(batch)) // TRIM_EVERY_PAGES:
            release_free_memory()
        prepared = _merged(batch)
        report.read += prepared.read
        (written, moved), rejected = write_quarantining(
            engine,
            list(prepared.orders.values()),
            write,
            _candidate,
            released=released,
            rejected=prepared.rejected,
        )
        if watermarks is not None:
            watermarks.update(moved)
        report.rejected += len(rejected)
        report.pages += prepared.pages
        if written is not None:
            report.inserted += written.inserted
            report.updated += written.updated
            report.child_rows_written += written.line_items
            checkpoint = max(checkpoint, written.newest[by])
        page_done(checkpoint)


def _group_start(
    group: list[str], watermarks: dict[str, str | None], policy: OrdersPolicy, history: HistoryRefetch | None
) -> datetime:
    """Where a group's read starts: the history's first day, else a lookback before its oldest watermark."""
    if history:
        return history.days.start_at
    history_start = datetime.combine(policy.history_start, time.min, UTC)
    group_watermarks = [watermarks[loc] for loc in group]
    if not all(group_watermarks):
        return history_start
    oldest = min(datetime.fromisoformat(w) for w in group_watermarks if w)
    return max(history_start, oldest - timedelta(hours=policy.lookback_hours))


def sync_orders(
    client: SquareClient,
    engine: sa.Engine,
    policy: OrdersPolicy,
    *,
    history: HistoryRefetch | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """Incremental sync up to `now`, or with `history` a re-fetch of the orders of those days.

    A history re-fetch leaves the watermarks alone: it repairs the past
    without changing where the next incremental run starts.
    """
    end_at = history.days.end_at if history else (now or utc_now())
    location_ids = source_location_ids(client)
    stored = read_watermarks_under(engine, LOCATION_WATERMARK)
    watermarks = {loc: stored.get(LOCATION_WATERMARK + loc) for loc in location_ids}
    known = [w for w in watermarks.values() if w]
    report = SyncReport(
        mode=f"history: {history.describe()}" if history else "incremental",
        watermark_before=min(known) if known and len(known) == len(watermarks) else None,
    )
    groups = location_groups(location_ids, watermarks, policy.location_group_size)
    report.extra["location_groups"] = len(groups)
    quarantine = Quarantine(engine)
    starts = [_group_start(group, watermarks, policy, history) for group in groups]
    # The share of every group's time range read so far is the share of the sync done.
    ranges = TimeRanges([(start_at, end_at) for start_at in starts])
    progress = Progress(log, "square/orders", policies().progress, noun="orders")

    for index, (group, start_at) in enumerate(zip(groups, starts, strict=True)):

        def page_done(reached: datetime, index: int = index) -> None:
            progress.note(report.pages, report.read, done=ranges.share(index, reached))

        by: OrderTime = history.by if history else "updated_at"
        window = f"{format_timestamp(start_at)} .. {format_timestamp(end_at)}"
        log.info(f"orders of {len(group)} location(s) by {by} {window}")
        _sync_group(
            client,
            engine,
            policy,
            group,
            start_at,
            end_at,
            report,
            watermarks=None if history else watermarks,
            by=by,
            force=bool(history and history.force),
            quarantine=quarantine,
            page_done=page_done,
        )

    if not history:
        with engine.begin() as conn:
            move_watermark(conn, SYNCED_UNTIL, format_timestamp(end_at))
    known = [w for w in watermarks.values() if w]
    report.watermark_after = (
        min(known) if known and len(known) == len(watermarks) else report.watermark_before
    )
    return report.finish(client)

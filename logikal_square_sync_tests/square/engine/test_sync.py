"""Square syncs against the sandbox over HTTP, on SQLite and PostgreSQL: the warehouse equals the source.

`every_mode` runs a test against both sets of answers the sandbox gives where Square's are
undocumented (tombstones, result sets fixed or re-evaluated between pages, catalog order).
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.client import SquareApiError
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.order_days import OrderDays, order_day
from logikal_square_sync.square.engine.order_sync import LOCATION_WATERMARK, HistoryRefetch, sync_orders
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.quarantine import quarantined
from logikal_square_sync.warehouse.state import get_watermarks
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.square.helpers import (
    PAGE_SIZE,
    assert_warehouse_equals_source,
    catalog_policy,
    every_mode,
    every_mode_on_sqlite,
    orders_policy,
    source_order_days,
    source_orders,
    sync_everything,
    sync_process,
    ts,
    wait_while_it_runs,
    warehouse_orders,
)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


@every_mode
def test_full_sync_equals_the_source(make_client, engine, sandbox) -> None:
    reports = sync_everything(make_client, engine)
    assert_warehouse_equals_source(engine, sandbox)
    assert reports["orders"].inserted == sandbox.order_count()
    assert reports["orders"].pages > sandbox.order_count() / PAGE_SIZE  # paged, through several cursors
    assert reports["orders"].extra["location_groups"] == 2  # 12 locations, at most 10 per call
    assert reports["orders"].watermark_after is not None


@every_mode_on_sqlite
def test_a_rerun_without_source_changes_writes_no_rows(make_client, engine, sandbox) -> None:
    sync_everything(make_client, engine)
    again = sync_everything(make_client, engine)
    for name, report in again.items():
        assert (name, report.inserted, report.updated, report.child_rows_written) == (name, 0, 0, 0)
    assert_warehouse_equals_source(engine, sandbox)


@every_mode
def test_converges_after_source_changes(make_client, engine, sandbox) -> None:
    sync_everything(make_client, engine)

    updated = sandbox.update_orders(count=25)
    added = sandbox.add_orders(15)
    late = sandbox.add_late_orders(6, hours_late=60)  # offline orders with an old updated_at
    categories = [o for o in sandbox.catalog_objects() if o["type"] == "CATEGORY" and not o.get("is_deleted")]
    items = [o for o in sandbox.catalog_objects() if o["type"] == "ITEM" and not o.get("is_deleted")]
    sandbox.update_catalog_object(categories[0]["id"], name="Renamed category")
    tombstoned = sandbox.delete_catalog_object(items[0]["id"])
    new_item = sandbox.add_catalog_item("Brand-new item", variations=2)
    location = sandbox.locations()[0]["id"]
    variation = new_item[-1]
    sandbox.set_inventory_count(variation, location, "IN_STOCK", "42")

    reports = sync_everything(make_client, engine)
    assert_warehouse_equals_source(engine, sandbox)
    assert reports["orders"].inserted == len(added) + len(late)
    assert reports["orders"].updated == len(updated)
    assert len(tombstoned) >= 2  # the item and its variations
    assert reports["catalog"].deleted == len(tombstoned)
    with engine.connect() as conn:
        deleted = conn.execute(
            sa.select(t.square_catalog_items.c.is_deleted).where(
                t.square_catalog_items.c.id == items[0]["id"]
            )
        ).scalar_one()
    assert deleted is True  # kept as a tombstone, not removed


@every_mode_on_sqlite
@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("rate_limit", {}),
        ("rate_limit", {"retry_after": 0}),
        ("server_error", {}),
        ("truncated", {}),
        ("drop_connection", {}),
        ("hold", {}),  # held until the test ends: the client's read timeout fires, whatever the load
        ("expired_cursor", {}),
    ],
)
def test_every_fault_recovers_with_nothing_lost_or_duplicated(
    make_client, engine, sandbox, kind, extra
) -> None:
    # Twice in a row mid-pagination (once where each fault costs a read timeout). Orders follow no
    # cursor (each page is a new query), so expired cursors meet only the catalog and inventory.
    times = 1 if kind == "hold" else 2
    for endpoint in ("locations", "catalog_search", "orders_search", "inventory_counts"):
        after = 0 if endpoint == "locations" else 2
        sandbox.faults.inject(kind, endpoint=endpoint, times=times, after_calls=after, **extra)
    # A held call never answers, so a shorter read timeout only makes it fire sooner; an answer
    # merely slowed by load that misses it is retried like any timeout.
    client = functools.partial(make_client, timeout=1.0) if kind == "hold" else make_client
    reports = sync_everything(client, engine, catalog_page_size=10)
    assert_warehouse_equals_source(engine, sandbox)
    recovered = sum(r.retries + r.extra["cursor_restarts"] for r in reports.values())
    assert recovered >= 2 * times, reports
    assert _count(engine, t.square_orders) == sandbox.order_count()


@every_mode_on_sqlite
def test_a_crash_after_some_pages_then_a_rerun_converges(make_client, engine, sandbox) -> None:
    with make_client() as client:
        sync_locations(client, engine)
    # Square refuses the token after five pages: the run dies half-way.
    sandbox.faults.inject("unauthorized", endpoint="orders_search", times=100, after_calls=5)
    with make_client() as client, pytest.raises(SquareApiError, match=r"SearchOrders failed with HTTP 401"):
        sync_orders(client, engine, orders_policy())
    partial = warehouse_orders(engine)
    assert 0 < len(partial) < sandbox.order_count()
    # Every committed watermark is covered by committed data: all orders of its group up to it are stored.
    with engine.connect() as conn:
        marks = get_watermarks(conn, LOCATION_WATERMARK)
    source = source_orders(sandbox)
    for stream, mark in marks.items():
        location = stream.removeprefix(LOCATION_WATERMARK)
        expected = {i for i, o in source.items() if o[0] == location and o[2] <= ts(mark)}
        assert expected <= set(partial), f"watermark of {location} ran ahead of its data"

    sandbox.faults.clear()
    with make_client() as client:
        sync_orders(client, engine, orders_policy())
    assert warehouse_orders(engine) == source_orders(sandbox)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", None, r"order \(no id; .*field 'id': missing"),
        (
            "updated_at",
            "yesterday-ish",
            r"order '.+': field 'updated_at': Invalid RFC3339 encoded datetime \(value 'yesterday-ish'\)",
        ),
        (
            "version",
            "four",
            r"order '.+': field 'version': Expected `int \| null`, got `str` \(value 'four'\)",
        ),
        ("line_items", "none", r"order '.+': field 'line_items': Expected `array \| null`"),
    ],
)
def test_a_malformed_record_is_quarantined_naming_it_and_the_rest_written(
    make_client, engine, sandbox, field, value, message
) -> None:
    sync_everything(make_client, engine)
    victim = sandbox.update_orders(count=1)[0]
    others = sandbox.add_orders(5)
    source = {k: v for k, v in source_orders(sandbox).items() if k != victim}
    sandbox.corrupt_order(victim, field, value)
    with make_client() as client:
        report = sync_orders(client, engine, orders_policy())
    assert report.rejected == 1
    (rejected,) = quarantined(engine, "Square", ["order"])
    assert re.search(message, rejected.reason), rejected.reason
    stored = warehouse_orders(engine)
    assert set(others) <= set(stored)
    # The victim keeps its last good copy; every other order is exact.
    assert {k: v for k, v in stored.items() if k != victim} == source

    sandbox.update_orders(ids=[victim])  # a later change at the source serves it whole again
    with make_client() as client:
        sync_orders(client, engine, orders_policy())
    assert warehouse_orders(engine) == source_orders(sandbox)
    # Written, it leaves the quarantine; one sent without an id was filed by its content, which no
    # later record repeats: it stays for someone to look at (docs/square.md).
    left = [row.id for row in quarantined(engine, "Square", ["order"])]
    assert left == ([rejected.id] if field == "id" else [])


@every_mode_on_sqlite
@pytest.mark.parametrize("by", ["created_at", "updated_at"])
def test_history_refetch_restores_lost_orders_idempotently(make_client, engine, sandbox, by) -> None:
    sync_everything(make_client, engine)
    source = source_orders(sandbox)
    days = source_order_days(sandbox, ZoneInfo("UTC"), by)
    day = sorted(days.values())[len(days) // 2]
    lost = {i for i, d in days.items() if d == day}
    with engine.begin() as conn:
        conn.execute(t.square_orders.delete().where(t.square_orders.c.id.in_(lost)))
    with engine.connect() as conn:
        marks_before = get_watermarks(conn, LOCATION_WATERMARK)

    history = HistoryRefetch(OrderDays.parse(day.isoformat(), day.isoformat(), ZoneInfo("UTC")), by=by)
    with make_client() as client:
        report = sync_orders(client, engine, orders_policy(), history=history)
    assert report.inserted == len(lost) and report.updated == 0
    assert warehouse_orders(engine) == source
    with engine.connect() as conn:
        assert get_watermarks(conn, LOCATION_WATERMARK) == marks_before  # history leaves watermarks alone
    with make_client() as client:
        again = sync_orders(client, engine, orders_policy(), history=history)
    assert (again.inserted, again.updated, again.child_rows_written) == (0, 0, 0)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-02-30", "2026-03-01", "ISO dates"),
        ("2026-03-05", "2026-03-01", "is after end"),
        ("2026-06-18", "2999-01-01", r"start 2026-06-18 is in the future \(today is 2026-06-15 in UTC\)"),
    ],
)
def test_history_ranges_are_validated(start, end, message) -> None:
    with pytest.raises(ValueError, match=message):
        OrderDays.parse(start, end, ZoneInfo("UTC"), now=ANCHOR)


def test_order_days_follow_the_sync_timezone_across_daylight_saving() -> None:
    berlin, later = ZoneInfo("Europe/Berlin"), datetime(2027, 1, 2, tzinfo=UTC)
    spring = OrderDays.parse("2026-03-29", "2026-03-29", berlin, now=later)
    assert (spring.start_at, spring.end_at) == (
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 21, 59, 59, 999000, tzinfo=UTC),  # a 23-hour day
    )
    autumn = OrderDays.parse("2026-10-25", "2026-10-26", berlin, now=later)
    assert autumn.end_at - autumn.start_at == timedelta(hours=49, milliseconds=-1)  # 25 h + 24 h
    assert list(autumn.days()) == [date(2026, 10, 25), date(2026, 10, 26)]
    # 23:30 UTC on 31 December is already New Year's Day in Berlin.
    assert order_day(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), berlin) == date(2027, 1, 1)
    assert order_day(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), ZoneInfo("UTC")) == date(2026, 12, 31)


@every_mode_on_sqlite
def test_catalog_watermark_moves_only_when_the_run_completes(make_client, engine, sandbox) -> None:
    sandbox.faults.inject("unauthorized", endpoint="catalog_search", times=100, after_calls=1)
    with make_client() as client, pytest.raises(SquareApiError):
        sync_catalog(client, engine, catalog_policy(page_size=5))
    with engine.connect() as conn:
        assert get_watermarks(conn, "square/catalog") == {}
    sandbox.faults.clear()
    with make_client() as client:
        report = sync_catalog(client, engine, catalog_policy(page_size=5))
    assert report.watermark_after is not None


def test_a_killed_sync_process_then_a_rerun_converges(
    make_client, engine, sandbox, square_url, warehouse_url
) -> None:
    """A hard crash (SIGKILL mid-run, no exception handling at all) loses and duplicates nothing."""
    with make_client() as client:
        sync_locations(client, engine)
    # The sixth page is held, so the process is surely mid-run when it is killed.
    held = sandbox.faults.inject("hold", endpoint="orders_search", times=1, after_calls=5)
    process = sync_process(square_url, sandbox, warehouse_url, "order_sync.sync_orders", "orders_policy()")
    try:
        # The held request starts where page 5 ended: once it is in, pages 1-5 (every order of the
        # first group updated before that instant) are all the process can still commit.
        deadline = time.monotonic() + 180
        wait_while_it_runs(process, lambda: bool(held.requests), deadline, "reach its sixth page")
        (request,) = held.requests
        group = set(request["location_ids"])
        resume_at = datetime.fromisoformat(
            request["query"]["filter"]["date_time_filter"]["updated_at"]["start_at"]
        )
        committed = {i for i, o in source_orders(sandbox).items() if o[0] in group and o[2] < resume_at}
        wait_while_it_runs(
            process,
            lambda: set(warehouse_orders(engine)) == committed,
            deadline,
            "commit its first five pages",
        )
    finally:
        process.kill()
        process.wait()
        held.release()
    assert 4 * PAGE_SIZE < len(committed) <= 5 * PAGE_SIZE < sandbox.order_count()

    sandbox.faults.clear()
    with make_client() as client:
        sync_orders(client, engine, orders_policy())
    assert warehouse_orders(engine) == source_orders(sandbox)
    assert _count(engine, t.square_orders) == sandbox.order_count()

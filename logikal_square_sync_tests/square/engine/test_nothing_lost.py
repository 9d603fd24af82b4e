"""Nothing lost, nothing wrongly deleted: the Square syncs where the API leaves Square's answer open.

Every test runs over real HTTP against the sandbox, on SQLite and PostgreSQL,
and where the sandbox can answer an open question either way (tombstones,
result sets fixed or re-evaluated between pages, the catalog's order), in
each of those modes. Edits "during a run" are made by page hooks between two
pages, with both clocks moved on, so they land at an exact point of the sync.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from logikal_square_sync.policies import CatalogPolicy, PolicyFileError, load_policies
from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.client import SquareApiError, SquareRetriesExhausted
from logikal_square_sync.square.engine.inventory_sync import sync_inventory
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.order_sync import LOCATION_WATERMARK, sync_orders
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.state import get_watermarks
from logikal_square_sync_sandbox.square import SquareSandbox
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.marks import SQLITE_ONLY
from logikal_square_sync_tests.square.helpers import (
    PAGE_SIZE,
    Clocks,
    MakeClient,
    all_modes,
    assert_catalog_equals_source,
    assert_warehouse_equals_source,
    catalog_policy,
    every_mode,
    inventory_policy,
    normalized,
    orders_policy,
    source_inventory,
    source_line_items,
    source_orders,
    sync_everything,
    synced,
    ts,
    warehouse_inventory,
    warehouse_line_items,
    warehouse_orders,
)

# Cursors that outlive the minutes a test moves the clocks on mid-run: an expired cursor restarts
# the read from the top, which would re-read everything and hide what these tests look for.
LONG_CURSORS = {"cursor_ttl_seconds": 3600}
RESULT_SETS = [pytest.param({"result_sets": mode, **LONG_CURSORS}, id=mode) for mode in ("pinned", "live")]
CATALOG_MODES = [
    pytest.param(
        {"result_sets": mode, "catalog_order": order, **LONG_CURSORS},
        id=f"{mode}-{order}",
        marks=() if (mode, order) in {("pinned", "shuffled"), ("live", "updated_at")} else SQLITE_ONLY,
    )
    for mode in ("pinned", "live")
    for order in ("shuffled", "updated_at")
]
EVERY_MODE = all_modes(**LONG_CURSORS)
TOMBSTONES = [pytest.param({"tombstones": mode}, id=f"{mode}-tombstones") for mode in ("minimal", "full")]


def _renamed_after_a_first_run(
    make_client: MakeClient, engine: sa.Engine, sandbox: SquareSandbox, clocks: Clocks, label: str
) -> tuple[CatalogPolicy, list[str]]:
    """A first catalog run, 8 objects a page; a minute on, every live object renamed `<id> <label>`."""
    policy = catalog_policy(page_size=8)
    synced(make_client, sync_catalog, engine, policy)
    objects = live_catalog_ids(sandbox)
    clocks.advance(60)
    for object_id in objects:
        sandbox.update_catalog_object(object_id, name=f"{object_id} {label}")
    return policy, objects


def _next_catalog_run_repairs_it(
    make_client: MakeClient, engine: sa.Engine, sandbox: SquareSandbox, policy: CatalogPolicy
) -> None:
    """What a run could not see, the next reads: after it the warehouse holds the whole catalog."""
    synced(make_client, sync_catalog, engine, policy)
    assert_catalog_equals_source(engine, sandbox)


def count_key(count: dict[str, Any]) -> tuple[str, str, str]:
    return count["catalog_object_id"], count["location_id"], count["state"]


def live_catalog_ids(sandbox: SquareSandbox, kind: str | None = None) -> list[str]:
    return sorted(
        o["id"] for o in sandbox.catalog_objects(include_deleted=False) if kind is None or o["type"] == kind
    )


def assert_inventory_equals_source(engine: sa.Engine, sandbox: SquareSandbox) -> None:
    expected = {k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items()}
    assert warehouse_inventory(engine) == expected


# ---- 6. edits made during a run ------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", CATALOG_MODES, indirect=True)
def test_catalog_edits_made_while_a_run_reads_are_not_lost(
    make_client, engine, sandbox, clocks: Clocks
) -> None:
    policy, objects = _renamed_after_a_first_run(make_client, engine, sandbox, clocks, "before the run")
    assert len(objects) == 40  # the next run reads 40 changed objects: 5 pages of 8

    def edits(ids: list[str], label: str, seconds: int):
        def edit() -> None:
            clocks.advance(seconds)
            for object_id in ids:
                sandbox.update_catalog_object(object_id, name=f"{object_id} {label}")

        return edit

    # Everything changes after page 1 is served, so the objects of page 1 change behind the read; the
    # variations change again after page 4, ten minutes on, and page 5 shows some of those. (A
    # variation also comes nested in its item, so only items and categories cannot be read twice.)
    variations = live_catalog_ids(sandbox, "ITEM_VARIATION")
    after_page_1 = sandbox.after_page("catalog_search", 1, edits(objects, "after page 1", 60))
    after_page_4 = sandbox.after_page("catalog_search", 4, edits(variations, "ten minutes on", 600))
    report = synced(make_client, sync_catalog, engine, policy)
    after_page_1.assert_ran()
    after_page_4.assert_ran()
    assert report.extra["changed_during_run"] is True
    # The watermark does not pass the first edits (made at +120 s) the run may have paged past.
    assert ts(report.watermark_after) < ANCHOR + timedelta(seconds=120)

    _next_catalog_run_repairs_it(make_client, engine, sandbox, policy)


@pytest.mark.parametrize("sandbox", CATALOG_MODES, indirect=True)
def test_an_unchanged_object_shifted_past_by_a_mid_run_edit_is_read_next_run(
    make_client, engine, sandbox, clocks: Clocks
) -> None:
    # All at one instant: in updated_at order, pages of 8 in id order.
    policy, objects = _renamed_after_a_first_run(make_client, engine, sandbox, clocks, "yesterday")
    clocks.advance(86_400)  # the run is a day later: those changes are far older than its start

    def edit_one_already_read() -> None:
        clocks.advance(60)
        sandbox.update_catalog_object(objects[0], name="edited during the run")

    # With results re-evaluated per page in updated_at order, the edit moves objects[0] to the end
    # and objects[8], unchanged since yesterday, slides onto page 1, already read: never served.
    hook = sandbox.after_page("catalog_search", 1, edit_one_already_read)
    report = synced(make_client, sync_catalog, engine, policy)
    hook.assert_ran()
    assert report.extra["changed_during_run"] is True
    _next_catalog_run_repairs_it(make_client, engine, sandbox, policy)


def test_the_catalog_watermark_never_passes_the_run_start_minus_the_overlap(
    make_client, engine, sandbox, clocks: Clocks
) -> None:
    policy = catalog_policy()
    synced(make_client, sync_catalog, engine, policy)
    item = live_catalog_ids(sandbox, "ITEM")[0]
    sandbox.update_catalog_object(item, name="Just before the run")  # at the sandbox's ANCHOR
    clocks.advance(120)  # the run starts 2 minutes later: the edit is inside the 5-minute overlap
    report = synced(make_client, sync_catalog, engine, policy, now=ANCHOR + timedelta(seconds=120))
    assert report.extra["changed_during_run"] is True  # the probe cannot tell it from a mid-run edit
    assert ts(report.watermark_after) <= ANCHOR + timedelta(seconds=120) - timedelta(minutes=5)
    clocks.advance(3600)  # an hour later nothing has changed for a while: the watermark moves, capped
    quiet = synced(make_client, sync_catalog, engine, policy)
    assert quiet.extra["changed_during_run"] is False
    assert ts(quiet.watermark_after) == ANCHOR  # the newest change read
    assert_catalog_equals_source(engine, sandbox)


@pytest.mark.parametrize("sandbox", RESULT_SETS, indirect=True)
def test_inventory_changes_made_while_a_run_reads_are_not_lost(
    make_client, engine, sandbox, clocks: Clocks
) -> None:
    policy = inventory_policy(page_size=10)
    synced(make_client, sync_inventory, engine, policy)
    changed = sorted(count_key(c) for c in sandbox.inventory_counts())[:50]
    clocks.advance(60)
    for key in changed:  # one instant, so the next run's pages are these in key order, 10 a page
        sandbox.set_inventory_count(*key, "1")

    def recount(keys: list[tuple[str, str, str]], quantity: str, seconds: int):
        def edit() -> None:
            clocks.advance(seconds)
            for key in keys:
                sandbox.set_inventory_count(*key, quantity)

        return edit

    # The counts of page 1 change once it is served; those of page 5 ten minutes later, before it is.
    after_page_1 = sandbox.after_page("inventory_counts", 1, recount(changed[:10], "2", 60))
    after_page_4 = sandbox.after_page("inventory_counts", 4, recount(changed[40:], "3", 600))
    report = synced(make_client, sync_inventory, engine, policy)
    after_page_1.assert_ran()
    after_page_4.assert_ran()
    # The newest count on the first page, from before any mid-run change.
    assert ts(report.watermark_after) == ANCHOR + timedelta(seconds=60)

    synced(make_client, sync_inventory, engine, policy)
    assert_inventory_equals_source(engine, sandbox)


@every_mode
def test_orders_updated_while_a_run_reads_skip_no_other_order(
    make_client, engine, sandbox, clocks: Clocks
) -> None:
    synced(make_client, sync_locations, engine)
    first_group = sorted(loc["id"] for loc in sandbox.locations())[:10]
    oldest = sorted(
        (o for o in sandbox.iter_orders() if o["location_id"] in first_group),
        key=lambda o: ts(o["updated_at"]),
    )
    moved = [o["id"] for o in oldest[:5]]  # served on the first page

    def update() -> None:
        clocks.advance(60)
        sandbox.update_orders(ids=moved)  # now updated after the run's end: out of its range

    hook = sandbox.after_page("orders_search", 2, update)
    synced(make_client, sync_orders, engine, orders_policy())
    hook.assert_ran()
    # The next run reads the five updated orders; every other order was read the first time.
    report = synced(make_client, sync_orders, engine, orders_policy())
    assert report.inserted == 0 and report.updated == len(moved)
    assert warehouse_orders(engine) == source_orders(sandbox)
    assert warehouse_line_items(engine) == normalized(source_line_items(sandbox))


def test_more_orders_at_one_instant_than_a_page_holds_are_all_read(make_client, engine, sandbox) -> None:
    sync_everything(make_client, engine)
    location = next(loc["id"] for loc in sandbox.locations() if loc["status"] == "ACTIVE")
    burst = sandbox.add_orders(3 * PAGE_SIZE + 7, location_id=location)  # one millisecond: a bulk import
    assert len({sandbox.order(i)["updated_at"] for i in burst}) == 1
    # The burst is paged by cursor, and an expired cursor there restarts from the last commit.
    sandbox.faults.inject("expired_cursor", endpoint="orders_search", after_calls=2)
    report = synced(make_client, sync_orders, engine, orders_policy())
    assert report.inserted == len(burst) and report.extra["cursor_restarts"] == 1
    assert_warehouse_equals_source(engine, sandbox)


def test_the_inventory_watermark_is_the_newest_count_at_the_start(make_client, engine, sandbox) -> None:
    first = synced(make_client, sync_inventory, engine, inventory_policy())
    newest = max(ts(c["calculated_at"]) for c in sandbox.inventory_counts())
    assert ts(first.watermark_after) == newest
    again = synced(make_client, sync_inventory, engine, inventory_policy())
    assert (again.inserted, again.updated, again.watermark_after) == (0, 0, first.watermark_after)


# ---- 7. tombstones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", TOMBSTONES, indirect=True)
def test_deleted_catalog_objects_keep_their_last_known_attributes(make_client, engine, sandbox) -> None:
    sync_everything(make_client, engine)
    items = live_catalog_ids(sandbox, "ITEM")
    lone_variation = next(
        o["id"]
        for o in sandbox.catalog_objects(include_deleted=False)
        if o["type"] == "ITEM_VARIATION"
        and o["item_variation_data"]["item_id"] != items[0]
        and "price_money" in o["item_variation_data"]
    )
    category = live_catalog_ids(sandbox, "CATEGORY")[-1]
    deleted = [
        *sandbox.delete_catalog_object(items[0]),  # the item and its variations
        *sandbox.delete_catalog_object(lone_variation),
        *sandbox.delete_catalog_object(category),
    ]
    reports = sync_everything(make_client, engine)
    assert reports["catalog"].deleted == len(deleted) == 5
    assert_warehouse_equals_source(engine, sandbox)  # names, SKUs, prices, parents: their last live values
    v = t.square_catalog_variations.c
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(v.name, v.sku, v.price_currency).where(v.is_deleted, v.id == lone_variation)
        ).one()
    assert None not in kept
    again = sync_everything(make_client, engine)
    assert (again["catalog"].inserted, again["catalog"].updated) == (0, 0)


@pytest.mark.parametrize("sandbox", TOMBSTONES, indirect=True)
def test_a_tombstone_of_an_object_never_seen_is_stored_with_what_it_has(make_client, engine, sandbox) -> None:
    item, variation = sandbox.add_catalog_item("Short-lived", variations=1)
    sandbox.delete_catalog_object(item)
    synced(make_client, sync_catalog, engine, catalog_policy())
    i, v = t.square_catalog_items.c, t.square_catalog_variations.c
    with engine.connect() as conn:
        stored_item = conn.execute(sa.select(i.name, i.is_deleted).where(i.id == item)).one()
        stored_variation = conn.execute(
            sa.select(v.item_id, v.sku, v.is_deleted).where(v.id == variation)
        ).one()
    minimal = sandbox.config.tombstones == "minimal"
    assert tuple(stored_item) == (None if minimal else "Short-lived", True)
    assert stored_variation.item_id == item and stored_variation.is_deleted
    assert (stored_variation.sku is None) == minimal


# ---- 8. a new location -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sandbox",
    [pytest.param({"locations": 8, "orders": 2000, "history_days": 60}, id="8-locations")],
    indirect=True,
)
def test_a_new_location_does_not_drag_caught_up_ones_back_to_history_start(
    make_client, engine, sandbox
) -> None:
    sync_everything(make_client, engine)
    with engine.connect() as conn:
        marks = get_watermarks(conn, LOCATION_WATERMARK)
    assert len(marks) == 8
    lookback_from = min(ts(mark) for mark in marks.values()) - timedelta(hours=72)
    new_location = sandbox.add_location("Ninth Street")
    sandbox.add_orders(50, location_id=new_location)
    synced(make_client, sync_locations, engine)
    report = synced(make_client, sync_orders, engine, orders_policy())
    assert report.inserted == 50 and report.extra["location_groups"] == 2
    # The caught-up locations re-read their lookback only; the new one its whole history.
    re_read = sum(
        1
        for o in sandbox.iter_orders()
        if o["location_id"] != new_location and ts(o["updated_at"]) >= lookback_from
    )
    # (each page boundary reads the orders at its last instant once more)
    assert 50 + re_read <= report.read <= 50 + re_read + 2 * report.pages
    assert report.read < sandbox.order_count() / 5
    assert_warehouse_equals_source(engine, sandbox)


# ---- 10. the last answer in the error; cursor restarts on the re-fetch of a cut page --------------


def test_exhausted_retries_name_the_endpoint_status_and_squares_error(make_client, engine, sandbox) -> None:
    synced(make_client, sync_locations, engine)
    sandbox.faults.inject("server_error", endpoint="orders_search", status=503, times=None, after_calls=1)
    with make_client() as client, pytest.raises(SquareRetriesExhausted) as raised:
        sync_orders(client, engine, orders_policy())
    message = str(raised.value)
    assert "SearchOrders failed with HTTP 503" in message
    assert "SERVICE_UNAVAILABLE: The service is temporarily unavailable." in message
    assert "6 attempts" in message
    assert (raised.value.status, raised.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert isinstance(raised.value, SquareApiError)
    assert 0 < len(warehouse_orders(engine)) < sandbox.order_count()  # the first page stays

    sandbox.faults.clear()
    sandbox.faults.inject("rate_limit", endpoint="catalog_search", retry_after=86400)
    with (
        make_client() as client,
        pytest.raises(SquareRetriesExhausted, match=r"HTTP 429: RATE_LIMITED.*86400s"),
    ):
        sync_catalog(client, engine, catalog_policy())


def test_an_expired_cursor_on_the_refetch_of_a_cut_page_restarts_the_query(
    make_client, engine, sandbox
) -> None:
    # Page 3 comes cut short; fetching it again, its cursor has expired.
    sandbox.faults.inject("cut_json", endpoint="inventory_counts", after_calls=2)
    sandbox.faults.inject("expired_cursor", endpoint="inventory_counts", after_calls=3)
    report = synced(make_client, sync_inventory, engine, inventory_policy())
    assert sandbox.stats.faults_fired["cut_json"] == 1 and sandbox.stats.faults_fired["expired_cursor"] == 1
    assert report.extra["cursor_restarts"] == 1 and report.retries >= 1
    assert_inventory_equals_source(engine, sandbox)


# ---- the weekly catalog refresh --------------------------------------------------------------------


def test_the_catalog_is_read_in_full_weekly_and_on_demand(make_client, engine, sandbox) -> None:
    policy = catalog_policy()
    assert policy.full_refresh_days == 7
    lost = live_catalog_ids(sandbox, "ITEM_VARIATION")[0]

    def lose() -> None:  # as if a restore went wrong: a row an incremental run has no reason to read
        with engine.begin() as conn:
            conn.execute(t.square_catalog_variations.delete().where(t.square_catalog_variations.c.id == lost))

    def run(days: float, **kwargs) -> str:
        report = synced(
            make_client, sync_catalog, engine, policy, now=ANCHOR + timedelta(days=days), **kwargs
        )
        with engine.connect() as conn:
            present = conn.execute(
                sa.select(sa.func.count()).where(t.square_catalog_variations.c.id == lost)
            ).scalar_one()
        return f"{report.mode}, {'restored' if present else 'lost'}"

    assert run(0) == "full refresh, restored"
    lose()
    assert run(1) == "incremental, lost"
    assert run(2, full_refresh=True) == "full refresh, restored"
    lose()
    assert run(8.9) == "incremental, lost"  # 6.9 days after the last full refresh
    assert run(9) == "full refresh, restored"  # 7 days after it
    assert_catalog_equals_source(engine, sandbox)


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (
            "full_refresh_days: 7        # a full refresh at least this often, else begin_time",
            "full_refresh_days: 0",
            r"square\.catalog\.full_refresh_days: Input should be greater than or equal to 1",
        ),
        (
            "full_refresh_days: 7        # a full refresh at least this often, else updated_after",
            "full_refresh_days: weekly",
            r"square\.inventory\.full_refresh_days: Input should be a valid integer",
        ),
    ],
)
def test_full_refresh_days_are_validated(tmp_path: Path, line: str, replacement: str, message: str) -> None:
    text = (Path(__file__).parents[3] / "logikal_square_sync" / "policies.yaml").read_text()
    assert line in text
    bad = tmp_path / "policies.yaml"
    bad.write_text(text.replace(line, replacement))
    with pytest.raises(PolicyFileError, match=message):
        load_policies(bad)


# ---- every mode: edits between pages everywhere, then the warehouse equals the source ------------


@pytest.mark.parametrize("sandbox", EVERY_MODE, indirect=True)
def test_a_sync_with_edits_between_pages_converges_in_every_mode(
    make_client, engine, sandbox, clocks: Clocks
) -> None:
    sync_everything(make_client, engine)
    item = live_catalog_ids(sandbox, "ITEM")[0]
    doomed = {
        item,
        *(
            v["id"]
            for v in next(o for o in sandbox.catalog_objects() if o["id"] == item)["item_data"]["variations"]
        ),
    }
    others = [i for i in live_catalog_ids(sandbox) if i not in doomed]
    counts = sorted(count_key(c) for c in sandbox.inventory_counts())
    orders = sorted(o["id"] for o in sandbox.iter_orders())
    location = next(loc["id"] for loc in sandbox.locations() if loc["status"] == "ACTIVE")

    # Enough changes that the next run reads several pages of each, with edits between them.
    clocks.advance(60)
    for object_id in others[:20]:
        sandbox.update_catalog_object(object_id, name=f"{object_id} before the run")
    for key in counts[:30]:
        sandbox.set_inventory_count(*key, "5")
    sandbox.update_orders(ids=orders[:200])

    def catalog_edits() -> None:
        clocks.advance(30)
        sandbox.update_catalog_object(others[-1], name="Renamed mid-run")
        sandbox.delete_catalog_object(item)  # synced before, never changed since: keeps its last data
        sandbox.add_catalog_item("Added mid-run", variations=2)

    def inventory_edits() -> None:
        clocks.advance(30)
        for key in counts[::7]:
            sandbox.set_inventory_count(*key, "77")

    def order_edits() -> None:
        clocks.advance(30)
        sandbox.update_orders(ids=orders[::9])
        sandbox.add_orders(12, location_id=location)
        sandbox.add_late_orders(4, hours_late=50)

    hooks = [
        sandbox.after_page("catalog_search", 1, catalog_edits),
        sandbox.after_page("inventory_counts", 1, inventory_edits),
        sandbox.after_page("orders_search", 2, order_edits),
        sandbox.after_page("orders_search", 4, order_edits),
    ]
    sync_everything(make_client, engine, catalog_page_size=5, inventory_page_size=10)
    for hook in hooks:
        hook.assert_ran()
    clocks.advance(600)
    sync_everything(make_client, engine, catalog_page_size=5, inventory_page_size=10)
    assert_warehouse_equals_source(engine, sandbox)
    again = sync_everything(make_client, engine)
    for name, report in again.items():
        assert (name, report.inserted, report.updated, report.child_rows_written) == (name, 0, 0, 0)

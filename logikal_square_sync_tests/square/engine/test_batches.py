"""Several pages per transaction (square/batches.py): what a batch holds, and that batching loses nothing.

The unit tests drive `batched` with a hand-moved clock. The sync tests run the
catalog and inventory syncs over HTTP against the sandbox, on SQLite and
PostgreSQL, with a few pages to a transaction (conftest `BATCH_PAGES`), and
break them between two pages of one batch: by a refused request and SIGKILL.
Each time the watermark stays where it was, what was committed stays, and
the next run converges exactly on the source. A malformed record breaks
nothing: it is quarantined and the rest of its batch written.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from logikal_square_sync.square.engine.batches import BatchLimits, batched
from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.client import SquareApiError
from logikal_square_sync.square.engine.inventory_sync import sync_inventory
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.pages import with_last_flag
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.quarantine import quarantined
from logikal_square_sync.warehouse.state import get_watermarks
from logikal_square_sync_tests.square.helpers import (
    assert_catalog_equals_source,
    catalog_policy,
    every_mode,
    inventory_policy,
    source_inventory,
    sync_process,
    ts,
    wait_while_it_runs,
    warehouse_inventory,
)

# Ten counts a page, four pages a transaction: the sandbox's 235 counts make 24 pages, 6 transactions.
INVENTORY_PAGE = 10
INVENTORY_BATCH_PAGES = 4


# ---- batched, alone ----------------------------------------------------------------------------------


@dataclass
class _Pages:
    """A batch of pages given as lists of row names; refuses a page holding a name it holds already."""

    pages: list[list[str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(page) for page in self.pages)

    def add(self, page: list[str]) -> bool:
        if any(name in held for held in self.pages for name in page):
            return False
        self.pages.append(page)
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _batches(pages, limits: BatchLimits, clock=None) -> list[list[list[str]]]:
    return [batch.pages for batch in batched(pages, _Pages, limits, clock=clock or _Clock())]


def test_a_batch_ends_at_its_row_limit_and_never_splits_a_page() -> None:
    pages = [["a", "b"], ["c"], ["d", "e", "f", "g"], ["h"], ["i"]]
    assert _batches(pages, BatchLimits(rows=3, seconds=60)) == [
        [["a", "b"], ["c"]],
        [["d", "e", "f", "g"]],  # a page larger than the limit is a batch of its own, whole
        [["h"], ["i"]],  # the last batch ends with the last page
    ]
    assert _batches(pages, BatchLimits(rows=1, seconds=60)) == [[page] for page in pages]
    assert _batches([], BatchLimits(rows=3, seconds=60)) == []


def test_a_batch_ends_once_its_first_page_was_read_its_seconds_ago() -> None:
    clock = _Clock()

    def pages() -> Iterator[list[str]]:
        for name, arrives_at in [("a", 0), ("b", 4), ("c", 5), ("d", 6), ("e", 20)]:
            clock.now = arrives_at
            yield [name]

    assert _batches(pages(), BatchLimits(rows=100, seconds=5), clock) == [
        [["a"], ["b"], ["c"]],  # c arrives 5 s after a
        [["d"], ["e"]],
    ]


def test_a_page_the_batch_refuses_starts_the_next_one() -> None:
    pages = [["a"], ["b"], ["a"], ["c"]]
    assert _batches(pages, BatchLimits(rows=100, seconds=60)) == [[["a"], ["b"]], [["a"], ["c"]]]


def test_an_error_while_reading_comes_after_the_pages_read_before_it() -> None:
    def pages() -> Iterator[list[str]]:
        yield ["a"]
        yield ["b"]
        yield ["c"]
        raise ValueError("page 4 is malformed")

    written = []
    with pytest.raises(ValueError, match="page 4 is malformed"):
        for batch in batched(pages(), _Pages, BatchLimits(rows=2, seconds=60), clock=_Clock()):
            written.append(batch.pages)
    assert written == [[["a"], ["b"]], [["c"]]]


# ---- the syncs -----------------------------------------------------------------------------------


def _inventory_policy():
    return inventory_policy(page_size=INVENTORY_PAGE, batch_pages=INVENTORY_BATCH_PAGES)


def _watermarks(engine: sa.Engine, prefix: str) -> dict:
    with engine.connect() as conn:
        return get_watermarks(conn, prefix)


def _first_counts(sandbox, pages: int) -> dict:
    """The source's counts on its first `pages` pages (BatchRetrieveInventoryCounts: newest first)."""
    keys = [(c["catalog_object_id"], c["location_id"], c["state"]) for c in sandbox.inventory_counts()]
    source = source_inventory(sandbox)
    return {key: (source[key][0].normalize(), source[key][1]) for key in keys[: pages * INVENTORY_PAGE]}


def _assert_inventory_equals_source(engine: sa.Engine, sandbox) -> None:
    expected = {k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items()}
    assert warehouse_inventory(engine) == expected


@every_mode
def test_pages_share_transactions(make_client, engine, sandbox) -> None:
    commits = []

    def count(conn: sa.Connection) -> None:
        commits.append(conn)

    sa.event.listen(engine, "commit", count)
    try:
        with make_client() as client:
            report = sync_inventory(client, engine, _inventory_policy())
    finally:
        sa.event.remove(engine, "commit", count)
    pages = report.pages
    assert pages == math.ceil(len(sandbox.inventory_counts()) / INVENTORY_PAGE) > 2 * INVENTORY_BATCH_PAGES
    assert len(commits) == math.ceil(pages / INVENTORY_BATCH_PAGES)
    _assert_inventory_equals_source(engine, sandbox)
    assert ts(report.watermark_after) == max(ts(c["calculated_at"]) for c in sandbox.inventory_counts())


def test_a_refused_request_between_pages_of_a_batch_loses_nothing(make_client, engine, sandbox) -> None:
    # Page 7 is refused. A page is handed on once the next one is in (whether it is the last is
    # known only then) or once reading the next one failed (then it is not the last): pages 1-4
    # make the first transaction, pages 5 and 6 wait in the second.
    sandbox.faults.inject("unauthorized", endpoint="inventory_counts", times=100, after_calls=6)
    with make_client() as client, pytest.raises(SquareApiError, match="HTTP 401"):
        sync_inventory(client, engine, _inventory_policy())
    # Everything handed on before the error is written, the page waiting in its batch included.
    assert warehouse_inventory(engine) == _first_counts(sandbox, 6)
    assert _watermarks(engine, "square/inventory") == {}  # it moves only with the last page

    sandbox.faults.clear()
    with make_client() as client:
        again = sync_inventory(client, engine, _inventory_policy())
    _assert_inventory_equals_source(engine, sandbox)
    assert (again.inserted, again.updated) == (len(sandbox.inventory_counts()) - 6 * INVENTORY_PAGE, 0)


def test_a_malformed_count_on_a_later_page_is_quarantined_and_every_other_count_written(
    make_client, engine, sandbox
) -> None:
    counts = sandbox.inventory_counts()
    victim = counts[6 * INVENTORY_PAGE + 3]  # on page 7, while the second transaction holds pages 5 and 6
    key = (victim["catalog_object_id"], victim["location_id"], victim["state"])
    expected = {k: (q.normalize(), at) for k, (q, at) in source_inventory(sandbox).items() if k != key}
    sandbox.corrupt_inventory_count(key, "lots")
    message = rf"inventory count \(no id; record starts .*{victim['catalog_object_id']}.*: field 'quantity'"
    with make_client() as client:
        report = sync_inventory(client, engine, _inventory_policy())
    assert report.rejected == 1
    stored = warehouse_inventory(engine)
    assert key not in stored
    assert stored == expected
    (rejected,) = quarantined(engine, "Square", ["inventory count"])
    assert rejected.id == "/".join(key) and re.search(message, rejected.reason)
    assert _watermarks(engine, "square/inventory") != {}  # the bad count holds nothing back

    # Counted again at the source: the next sync writes it and takes it out of quarantine.
    sandbox.set_inventory_count(*key, victim["quantity"])
    with make_client() as client:
        sync_inventory(client, engine, _inventory_policy())
    _assert_inventory_equals_source(engine, sandbox)
    assert quarantined(engine, "Square", ["inventory count"]) == []


def test_a_sync_killed_in_the_middle_of_a_batch_then_a_rerun_converges(
    make_client, engine, sandbox, square_url, warehouse_url
) -> None:
    """SIGKILL while a batch is still being read: its pages are lost, none committed before."""
    # Page 6 is held: pages 1-4 are committed, page 5 waits in the second batch for pages 6-8.
    held = sandbox.faults.inject("hold", endpoint="inventory_counts", times=1, after_calls=5)
    committed = _first_counts(sandbox, INVENTORY_BATCH_PAGES)
    policy = f"inventory_policy(page_size={INVENTORY_PAGE}, batch_pages={INVENTORY_BATCH_PAGES})"
    process = sync_process(square_url, sandbox, warehouse_url, "inventory_sync.sync_inventory", policy)
    try:
        wait_while_it_runs(
            process,
            lambda: bool(held.requests) and warehouse_inventory(engine) == committed,
            time.monotonic() + 180,
            "commit its first batch and ask for page 6",
        )
    finally:
        process.kill()
        process.wait()
        held.release()
    assert warehouse_inventory(engine) == committed  # page 5, read but not yet committed, is lost
    assert _watermarks(engine, "square/inventory") == {}

    sandbox.faults.clear()
    with make_client() as client:
        again = sync_inventory(client, engine, _inventory_policy())
    _assert_inventory_equals_source(engine, sandbox)
    assert (again.inserted, again.updated) == (len(sandbox.inventory_counts()) - len(committed), 0)


@every_mode
def test_a_catalog_sync_refused_between_pages_of_a_batch_then_a_rerun_converges(
    make_client, engine, sandbox
) -> None:
    with make_client() as client:
        sync_locations(client, engine)
    sandbox.faults.inject("unauthorized", endpoint="catalog_search", times=100, after_calls=4)
    with make_client() as client, pytest.raises(SquareApiError, match="HTTP 401"):
        sync_catalog(client, engine, catalog_policy(page_size=5))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(t.square_catalog_items)).scalar_one()
        stored += conn.execute(
            sa.select(sa.func.count()).select_from(t.square_catalog_categories)
        ).scalar_one()
    assert stored > 0  # pages 1-3 committed, page 4 written when page 5 was refused
    assert _watermarks(engine, "square/catalog") == {}

    sandbox.faults.clear()
    with make_client() as client:
        sync_catalog(client, engine, catalog_policy(page_size=5))
    assert_catalog_equals_source(engine, sandbox)
    with make_client() as client:
        again = sync_catalog(client, engine, catalog_policy(page_size=5))
    assert (again.inserted, again.updated) == (0, 0)


@pytest.mark.parametrize(
    "sandbox",
    [
        pytest.param(
            {"tombstones": "minimal", "result_sets": "live", "catalog_order": "updated_at"}, id="live"
        )
    ],
    indirect=True,
)
def test_an_object_read_live_then_deleted_within_one_batch_keeps_its_live_name(
    make_client, engine, sandbox
) -> None:
    """A tombstone takes what it lacks from the stored row: a live copy in the batch is written first."""
    page_size = 5
    first_page = sorted(sandbox.catalog_objects(), key=lambda o: (ts(o["updated_at"]), o["id"]))[:page_size]
    victim = next(o for o in first_page if o["type"] in ("ITEM", "CATEGORY") and not o.get("is_deleted"))
    data = victim["item_data"] if victim["type"] == "ITEM" else victim["category_data"]
    # Deleted once page 1 is read: its tombstone, newest of all, comes on the last page.
    hook = sandbox.after_page("catalog_search", 1, lambda: sandbox.delete_catalog_object(victim["id"]))
    with make_client() as client:
        report = sync_catalog(client, engine, catalog_policy(page_size=page_size, batch_pages=1000))
    hook.assert_ran()
    table = t.square_catalog_items if victim["type"] == "ITEM" else t.square_catalog_categories
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(table.c.name, table.c.is_deleted).where(table.c.id == victim["id"])
        ).one()
    assert tuple(stored) == (data["name"], True)
    assert report.extra["changed_during_run"] is True


def test_the_item_read_before_a_failed_read_is_handed_on_as_not_the_last() -> None:
    def pages():
        yield "page 1"
        yield "page 2"
        raise RuntimeError("page 3 refused")

    seen = []
    with pytest.raises(RuntimeError, match="page 3 refused"):
        for page, is_last in with_last_flag(pages()):
            seen.append((page, is_last))
    assert seen == [("page 1", False), ("page 2", False)]
    assert list(with_last_flag(["only"])) == [("only", True)]

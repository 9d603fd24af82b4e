"""Long Square syncs tell how far they are: one progress line per transaction here (`progress_every_page`)."""

from __future__ import annotations

import logging
import re

import pytest

from logikal_square_sync.square.engine.catalog_sync import sync_catalog
from logikal_square_sync.square.engine.inventory_sync import sync_inventory
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.order_sync import sync_orders
from logikal_square_sync_tests.marks import SQLITE_ONLY
from logikal_square_sync_tests.square.helpers import catalog_policy, inventory_policy, orders_policy, synced

LINE = re.compile(
    r"^(?P<what>[\w/]+): (?P<pages>[\d,]+) pages, (?P<count>[\d,]+) (?P<noun>\w+) in [\d a-z]+"
    r"(?: \([\d.,]+ \w+/s\))?(?:; (?P<percent>\d+)% done(?:, about [\d a-z]+ left)?)?$"
)


def _progress(caplog: pytest.LogCaptureFixture, what: str) -> list[re.Match[str]]:
    found = [LINE.match(record.getMessage()) for record in caplog.records]
    return [match for match in found if match and match["what"] == what]


def _number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.usefixtures("progress_every_page")
@SQLITE_ONLY
def test_each_sync_logs_its_pages_records_and_what_it_knows_of_the_rest(make_client, engine, caplog) -> None:
    synced(make_client, sync_locations, engine)
    with caplog.at_level(logging.INFO, logger="logikal_square_sync"):
        orders = synced(make_client, sync_orders, engine, orders_policy())
        catalog = synced(make_client, sync_catalog, engine, catalog_policy())
        inventory = synced(make_client, sync_inventory, engine, inventory_policy())

    lines = _progress(caplog, "square/orders")
    # A line per transaction, of one page or of the pages ready by then: the last one counts them all.
    pages = [_number(line["pages"]) for line in lines]
    assert pages == sorted(set(pages)) and pages[-1] == orders.pages
    assert {line["noun"] for line in lines} == {"orders"}
    assert _number(lines[-1]["count"]) == orders.read
    # Two location groups, each from its first page to now: the share grows through both ranges.
    percents = [int(line["percent"]) for line in lines]
    assert percents[0] == 0 and percents == sorted(percents) and percents[-1] >= 99
    assert len(set(percents)) > len(percents) // 2  # it grows line by line, not in a leap

    for what, noun, report in [
        ("square/catalog", "objects", catalog),
        ("square/inventory", "counts", inventory),
    ]:
        lines = _progress(caplog, what)
        assert lines, what
        # A line per batch of pages (several pages a transaction): the last one counts them all.
        assert (_number(lines[-1]["pages"]), _number(lines[-1]["count"])) == (report.pages, report.read)
        assert {line["noun"] for line in lines} == {noun}
        assert all(line["percent"] is None for line in lines)  # no total: no estimate

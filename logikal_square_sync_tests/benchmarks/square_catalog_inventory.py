"""Benchmark: full catalog and inventory syncs into PostgreSQL, each against its own limit.

    python -m logikal_square_sync_tests.benchmarks.square_catalog_inventory
        [--catalog-objects 50000] [--inventory-counts 100000] [--json FILE]

As `square_full_sync`: the sandbox is served from this process, every measured
step runs in a child process of its own, and only ratios within one run mean
anything. For each of the catalog (categories, items, variations) and the
inventory counts:

- the limit: every page the sync reads, fetched and decoded with nothing
  written (each with the sync's own decoder: typed counts, catalog dicts),
  plus a PostgreSQL COPY of the rows the sync wrote into empty tables of the
  same shape;
- the full sync (a first run, so a full refresh), its peak RSS;
- target: full sync / limit <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from logikal_square_sync_tests.benchmarks.square_full_sync import (
    child_of,
    copy_limit,
    sandbox_of,
    scratch_database,
    time_now,
)

LOCATIONS = 10
CATEGORIES = 500
VARIATIONS_PER_ITEM = 2
# Of every (variation, location) pair the sandbox counts 3 in 4, a tenth of those twice (WASTE too).
COUNTS_PER_VARIATION = LOCATIONS * 0.75 * 1.1
TABLES = {
    "catalog": ["square_catalog_categories", "square_catalog_items", "square_catalog_variations"],
    "inventory": ["square_inventory_counts"],
}


def _client(url: str, token: str):
    from logikal_square_sync.square.engine.client import SquareClient

    return SquareClient(url, token, timeout=120)


def step_fetch(kind: str, url: str, token: str, _warehouse: str) -> dict[str, Any]:
    """The requests of a full sync, every page decoded, nothing written."""
    from logikal_square_sync.policies import policies
    from logikal_square_sync.square.engine.catalog_sync import catalog
    from logikal_square_sync.square.engine.inventory_sync import inventory

    square = policies().square
    # The sync's own call and full-refresh request; the client decodes with the sync's own decoder
    # (typed records), as the orders' limit does.
    if kind == "catalog":
        parts, page_size = catalog(square.catalog), square.catalog.page_size
    else:
        parts, page_size = inventory(square.inventory), square.inventory.page_size
    body = parts.request(page_size, None)
    started = time_now()
    records = 0
    with _client(url, token) as client:
        for page in parts.pages(client, lambda: body):
            records += len(page.get(parts.records) or [])
    return {"seconds": time_now() - started, "records": records}


def step_sync(kind: str, url: str, token: str, warehouse: str) -> dict[str, Any]:
    from logikal_square_sync.policies import policies
    from logikal_square_sync.square.engine.catalog_sync import sync_catalog
    from logikal_square_sync.square.engine.inventory_sync import sync_inventory
    from logikal_square_sync.square.engine.location_sync import sync_locations
    from logikal_square_sync.warehouse.connections import warehouse_engine

    square = policies().square
    engine = warehouse_engine(warehouse)
    with _client(url, token) as client:
        sync_locations(client, engine)
    started = time_now()
    with _client(url, token) as client:
        if kind == "catalog":
            report = sync_catalog(client, engine, square.catalog)
        else:
            report = sync_inventory(client, engine, square.inventory)
    return {
        "seconds": time_now() - started,
        "read": report.read,
        "inserted": report.inserted,
        "pages": report.pages,
    }


def step_copy(kind: str, _url: str, _token: str, warehouse: str) -> dict[str, Any]:
    return copy_limit(warehouse, tuple(TABLES[kind]))


STEPS = {"fetch": step_fetch, "sync": step_sync, "copy": step_copy}


def measure(kind: str, url: str, token: str) -> dict[str, Any]:
    def run(step: str, warehouse: str) -> dict[str, Any]:
        return child_of(__spec__.name, f"{step}:{kind}", url, token, warehouse)

    with scratch_database() as warehouse:
        fetch = run("fetch", warehouse)
        full = run("sync", warehouse)
        copy = run("copy", warehouse)
    limit = fetch["seconds"] + copy["seconds"]
    ratio = full["seconds"] / limit
    print(
        f"  {kind}: fetch every page, no writes : {fetch['seconds']:7.2f} s  ({fetch['records']:,} records)"
    )
    print(f"  {kind}: COPY of the same rows       : {copy['seconds']:7.2f} s  ({copy['rows']:,} rows)")
    print(f"  {kind}: limit (fetch + COPY)        : {limit:7.2f} s")
    print(
        f"  {kind}: full sync                   : {full['seconds']:7.2f} s  "
        f"({full['inserted']:,} rows, {full['pages']} pages, peak RSS {full['peak_rss_mb']:.0f} MB)"
    )
    verdict = "OK" if ratio <= 1.5 else "MISSED"
    print(f"  {kind}: ratio full sync / limit     : {ratio:7.2f}   (target <= 1.5)  {verdict}")
    if full["read"] != fetch["records"]:
        raise SystemExit(f"{kind}: the sync read {full['read']} records, the fetch {fetch['records']}")
    return {"fetch": fetch, "copy": copy, "sync": full, "limit_seconds": limit, "ratio": ratio}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        step, kind = sys.argv[2].split(":")
        from logikal_square_sync_tests.benchmarks.square_full_sync import report_child_result

        report_child_result(STEPS[step](kind, *sys.argv[3:6]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog-objects", type=int, default=50_000)
    parser.add_argument("--inventory-counts", type=int, default=100_000)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    results: dict[str, Any] = {}

    # categories + items + their variations = the objects asked for
    items = (args.catalog_objects - CATEGORIES) // (1 + VARIATIONS_PER_ITEM)
    print(
        f"Full catalog sync of ~{args.catalog_objects:,} objects ({CATEGORIES} categories, {items:,} items)"
    )
    with sandbox_of(locations=LOCATIONS, orders=0, categories=CATEGORIES, items=items) as (state, url):
        results["catalog"] = measure("catalog", url, state.config.access_token)

    items = round(args.inventory_counts / COUNTS_PER_VARIATION / VARIATIONS_PER_ITEM)
    print(
        f"Full inventory sync of ~{args.inventory_counts:,} counts ({items:,} items, {LOCATIONS} locations)"
    )
    with sandbox_of(locations=LOCATIONS, orders=0, categories=20, items=items) as (state, url):
        results["inventory"] = measure("inventory", url, state.config.access_token)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()

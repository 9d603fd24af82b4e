"""The Dagster UI as the console, in a real browser: what an operator opens, checked and photographed.

Drives Debian's Chromium (`/usr/bin/chromium`, `CHROMIUM` to use another) headless through
Playwright; Playwright's own browser builds are never downloaded. `test_console.py` runs
`check_console` against the running demo. The README's pictures come from the same pages:

    .venv/bin/python -m logikal_square_sync_tests.console   # starts the demo, writes docs/asset-graph-*.png
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LOCATION = "logikal_square_sync"
TIMEOUT_MS = 60_000
GROUPS = ("square", "logikal")


@contextmanager
def browser_page(width: int = 1600, height: int = 1000) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def _visible(page, text: str) -> None:
    page.get_by_text(text, exact=True).first.wait_for(state="visible")


def group_graph_url(url: str, group: str) -> str:
    return f"{url}/locations/{LOCATION}/asset-groups/{group}/lineage"


def show_asset_graph(page, url: str, group: str) -> None:
    """The lineage of one asset group, every node drawn with its latest materialization."""
    page.goto(group_graph_url(url, group))
    for name in {"square": ["orders", "catalog"], "logikal": ["parts_lists", "projects"]}[group]:
        _visible(page, name)
    page.wait_for_load_state("networkidle")
    # The nodes' status rows fill in after the graph is drawn.
    page.get_by_text("Loading...").first.wait_for(state="detached")
    _visible(page, "Materialized")


def check_console(page, url: str, warehouse: Path, run_id: str, pictures: Path | None = None) -> None:
    """The asset graph, an asset page with its columns and row count, the Automation page, a run."""
    for group in GROUPS:
        show_asset_graph(page, url, group)
        if pictures is not None:
            page.screenshot(path=str(pictures / f"asset-graph-{group}.png"))

    engine = sa.create_engine(f"sqlite:///{warehouse}")
    with engine.connect() as conn:
        orders = conn.execute(sa.text("SELECT count(*) FROM square_orders")).scalar_one()
    page.goto(f"{url}/assets/square/orders")
    _visible(page, "total_currency")  # a column of dagster/column_schema (warehouse/tables.py)
    _visible(page, f"{orders:,}")  # dagster/row_count of the last materialization

    page.goto(f"{url}/automation")
    for name in ("square_daily_sync", "logikal_project_sync_sensor", "alert_on_run_failure"):
        _visible(page, name)

    page.goto(f"{url}/runs/{run_id}")
    _visible(page, "Success")
    page.get_by_text(run_id[:8]).first.wait_for(state="visible")


def first_run_id(dagster_home: Path) -> str:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
    assert runs, "the demo has no successful run"
    return runs[-1].run_id  # the oldest: the Square and LogiKal tree run


def main(argv: list[str] | None = None) -> int:
    from logikal_square_sync_tests.demo_instance import start_demo, stop_demo

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the pictures go (default docs/)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        demo = start_demo(Path(data))
        try:
            with browser_page() as page:
                check_console(
                    page,
                    demo.url,
                    demo.data_dir / "warehouse.sqlite",
                    first_run_id(demo.dagster_home),
                    Path(args.out),
                )
        finally:
            stop_demo(demo)
    print(f"wrote {', '.join(f'asset-graph-{group}.png' for group in GROUPS)} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

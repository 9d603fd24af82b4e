"""The console in a real browser (headless Chromium) against the running demo."""

from pathlib import Path

import pytest

from logikal_square_sync_tests.ci import under_ci
from logikal_square_sync_tests.console import CHROMIUM, GROUPS, browser_page, check_console, first_run_id
from logikal_square_sync_tests.demo_instance import RunningDemo


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_the_console_shows_graph_columns_row_counts_automation_and_runs(
    running_demo: RunningDemo, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    with browser_page() as page:
        check_console(
            page,
            running_demo.url,
            running_demo.data_dir / "warehouse.sqlite",
            first_run_id(running_demo.dagster_home),
            pictures=tmp_path,
        )
    for group in GROUPS:
        assert (tmp_path / f"asset-graph-{group}.png").stat().st_size > 10_000, group

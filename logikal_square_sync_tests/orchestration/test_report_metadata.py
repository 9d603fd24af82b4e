"""One report, one set of keys: Square and LogiKal materializations name the same counts alike.

Also the logging convention: the engines log to Python loggers, and a run on an instance
configured like dagster.yaml (`python_logs`) has those records in its event log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.logikal.assets import logikal_directories
from logikal_square_sync.logikal.resource import LogikalResource
from logikal_square_sync.orchestration.report_metadata import report_metadata
from logikal_square_sync.square.assets import square_catalog, square_locations, square_orders
from logikal_square_sync.square.resource import SquareResource
from logikal_square_sync.warehouse.resource import WarehouseResource
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox
from logikal_square_sync_sandbox.logikal import create_app as logikal_app
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox
from logikal_square_sync_sandbox.square import create_app as square_app
from logikal_square_sync_tests.instances import instance_for_test
from logikal_square_sync_tests.logikal.sandbox_runs import sandbox_config
from logikal_square_sync_tests.marks import SQLITE_ONLY
from logikal_square_sync_tests.square.helpers import SMALL

# Every report's keys: what each materialization of either source carries.
SHARED_KEYS = set(SyncReport().metadata())


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def square() -> Iterator[SquareResource]:
    sandbox = SquareSandbox(SMALL)
    with serve_in_thread(square_app(sandbox)) as served:
        yield SquareResource(base_url=served.url, access_token=sandbox.config.access_token)


@pytest.fixture
def logikal() -> Iterator[LogikalResource]:
    sandbox = LogikalSandbox(sandbox_config())
    with serve_in_thread(logikal_app(sandbox)) as served:
        yield LogikalResource(
            base_url=served.url + BASE_PATH,
            username=sandbox.config.username,
            password=sandbox.config.password,
            retry_base_delay_seconds=0.01,
            allow_http=True,  # the sandbox serves plain http
        )


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node(node)
    return dict(materialization.metadata)


def test_the_watermarks_become_timestamps_or_none() -> None:
    report = SyncReport(watermark_after="2026-06-15T12:00:00Z")
    metadata = report_metadata(report, sa.create_engine("sqlite:////data/warehouse.sqlite"))
    assert set(metadata) == SHARED_KEYS | {"warehouse"}
    assert metadata["warehouse"] == dg.MetadataValue.text("sqlite:////data/warehouse.sqlite")
    assert metadata["watermark_before"] == dg.MetadataValue.text("none")
    assert isinstance(metadata["watermark_after"], dg.TimestampMetadataValue)
    assert metadata["watermark_after"].value == 1781524800.0
    assert report.metadata()["watermark_after"] == "2026-06-15T12:00:00Z"  # plain in the engine


@SQLITE_ONLY
def test_square_and_logikal_materializations_show_the_same_keys(instance, square, logikal, warehouse) -> None:
    resources = {"square": square, "warehouse": warehouse}
    squares = dg.materialize([square_locations, square_catalog], resources=resources, instance=instance)
    logikals = dg.materialize(
        [logikal_directories], resources={"logikal": logikal, "warehouse": warehouse}, instance=instance
    )
    assert squares.success and logikals.success
    locations, catalog = _metadata(squares, "square__locations"), _metadata(squares, "square__catalog")
    directories = _metadata(logikals, "logikal__directories")
    for metadata in (locations, catalog, directories):
        assert set(metadata) >= SHARED_KEYS
        assert metadata["rows_changed"].value == metadata["rows_inserted"].value > 0  # a first sync
        assert metadata["rows_updated"].value == metadata["rows_marked_deleted"].value == 0
        assert metadata["api_calls"].value >= metadata["pages"].value > 0
        assert metadata["records_read"].value > 0 and metadata["duration_seconds"].value >= 0
    for metadata in (locations, directories):  # both tables written by these syncs alone
        assert metadata["rows_inserted"].value == metadata["dagster/row_count"].value
    assert isinstance(catalog["watermark_after"], dg.TimestampMetadataValue)
    # Full refreshes keep no watermark, in either source.
    assert locations["watermark_after"].value == directories["watermark_after"].value == "none"
    assert locations["mode"].value == directories["mode"].value == "full refresh"
    # Each source's own counts, beside the shared ones.
    assert directories["logins"].value == 1 and catalog["cursor_restarts"].value == 0


@SQLITE_ONLY
def test_the_engines_log_records_reach_the_runs_event_log(instance, square, warehouse) -> None:
    resources = {"square": square, "warehouse": warehouse}
    result = dg.materialize([square_locations, square_orders], resources=resources, instance=instance)
    assert result.success
    logged = [event for event in instance.all_logs(result.run_id) if event.dagster_event is None]
    # order_sync logs through logging.getLogger(__name__); the run shows it under the step.
    (line, *_) = [event for event in logged if "orders of " in event.user_message]
    assert line.step_key == "square__orders"
    assert "location(s) by updated_at" in line.user_message


@SQLITE_ONLY
@pytest.mark.usefixtures("progress_every_page")
def test_progress_lines_reach_the_runs_event_log(instance, square, logikal, warehouse) -> None:
    squares = dg.materialize(
        [square_locations, square_orders],
        resources={"square": square, "warehouse": warehouse},
        instance=instance,
    )
    logikals = dg.materialize(
        [logikal_directories], resources={"logikal": logikal, "warehouse": warehouse}, instance=instance
    )
    assert squares.success and logikals.success
    for result, step, prefix in (
        (squares, "square__orders", "square/orders: 1 pages, "),
        (logikals, "logikal__directories", "LogiKal directories: 1 listings, "),
    ):
        logged = [event for event in instance.all_logs(result.run_id) if event.dagster_event is None]
        (first, *_) = [event for event in logged if event.user_message.startswith(prefix)]
        assert first.step_key == step


def test_every_materialization_names_the_warehouse_never_its_password(
    instance, square, logikal, warehouse_url: str
) -> None:
    """On both warehouses; on PostgreSQL through a URL with a password (the test server trusts any)."""
    password = "warehouse-Pa55-never-in-metadata"
    url = sa.make_url(warehouse_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password=password)
        shown = f"postgresql://{url.host}:{url.port or 5432}/{url.database}"
    else:
        shown = f"sqlite:///{url.database}"
    warehouse = WarehouseResource(url=url.render_as_string(hide_password=False))
    try:
        squares = dg.materialize(
            [square_locations, square_catalog, square_orders],
            resources={"square": square, "warehouse": warehouse},
            instance=instance,
        )
        logikals = dg.materialize(
            [logikal_directories], resources={"logikal": logikal, "warehouse": warehouse}, instance=instance
        )
    finally:
        warehouse.engine.dispose()
    assert squares.success and logikals.success
    materializations = [
        *squares.get_asset_materialization_events(),
        *logikals.get_asset_materialization_events(),
    ]
    assert len(materializations) == 4
    for event in materializations:
        assert event.materialization.metadata["warehouse"] == dg.MetadataValue.text(shown), event.asset_key
    everything = [repr(event) for result in (squares, logikals) for event in instance.all_logs(result.run_id)]
    assert everything and not [text for text in everything if password in text]

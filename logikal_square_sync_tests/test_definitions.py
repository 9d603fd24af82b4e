"""The code location as Dagster loads it: contract names, freshness, schedules, the master switch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pytest

from logikal_square_sync.definitions import build_defs
from logikal_square_sync.orchestration.freshness_policies import freshness_policy
from logikal_square_sync.policies import PolicyFileError, SquarePolicies, load_policies, policies
from logikal_square_sync_sandbox.demo import write_local_instance_yaml
from logikal_square_sync_tests.subprocesses import run_python

CONTRACT_ASSETS = {
    "square/locations",
    "square/catalog",
    "square/orders",
    "square/inventory",
    "logikal/directories",
    "logikal/projects",
    "logikal/phases",
    "logikal/elevations",
    "logikal/parts_lists",
}


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dg.Definitions:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # Schedules and sensors read the switches when the definitions are built.
    return build_defs()


def test_contract_assets_jobs_and_freshness(monkeypatch) -> None:
    defs = _load(monkeypatch)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys >= CONTRACT_ASSETS
    assert defs.resolve_job_def("square_orders_backfill")
    assert defs.resolve_job_def("logikal_project_sync")
    per_project = graph.get(dg.AssetKey(["logikal", "phases"])).partitions_def
    assert isinstance(per_project, dg.DynamicPartitionsDefinition) and per_project.name == "logikal_projects"
    assert graph.get(dg.AssetKey(["logikal", "projects"])).partitions_def is None
    orders = graph.get(dg.AssetKey(["square", "orders"]))
    assert orders.freshness_policy == freshness_policy(policies().square.orders)
    # No Square asset waits for another (docs/square.md); what their rows refer to is column lineage.
    for name in ("locations", "catalog", "orders", "inventory"):
        assert not graph.get(dg.AssetKey(["square", name])).parent_keys, name
    lineage = orders.metadata["dagster/column_lineage"].deps_by_column
    assert lineage["location_id"] == [dg.TableColumnDep(dg.AssetKey(["square", "locations"]), "id")]
    inventory = graph.get(dg.AssetKey(["square", "inventory"])).metadata["dagster/column_lineage"]
    assert set(inventory.deps_by_column) == {"catalog_object_id", "location_id"}
    for key in CONTRACT_ASSETS:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == key.split("/")[0] and node.owners and node.kinds and node.description


@pytest.mark.parametrize(("switch", "expected"), [("true", "RUNNING"), ("false", "STOPPED")])
def test_master_switch_sets_default_status(monkeypatch, switch, expected) -> None:
    defs = _load(monkeypatch, BACKGROUND_SYNC_ENABLED=switch, SYNC_TIMEZONE="Europe/Berlin")
    schedule = defs.resolve_schedule_def("square_daily_sync")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.default_status.value == expected
    sensors = {sensor.name: sensor.default_status.value for sensor in defs.sensors or []}
    # The switch stops background syncing, never the alerts: a failure in maintenance still pages.
    assert sensors.pop("alert_on_run_failure") == sensors.pop("alert_on_stale_assets") == "RUNNING"
    assert sensors and set(sensors.values()) == {expected}, sensors


def test_secrets_are_env_vars_not_values(monkeypatch) -> None:
    defs = _load(monkeypatch, SQUARE_ACCESS_TOKEN="secret-value", WAREHOUSE_URL="sqlite:///x.db")
    assert defs.resources is not None
    square, warehouse = defs.resources["square"], defs.resources["warehouse"]
    assert square.access_token == dg.EnvVar("SQUARE_ACCESS_TOKEN")
    assert warehouse.url == dg.EnvVar("WAREHOUSE_URL")  # a URL may carry a password


def test_a_bad_policy_file_names_the_field(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "logikal_square_sync" / "policies.yaml").read_text()
    bad = tmp_path / "policies.yaml"
    bad.write_text(text.replace("lookback_hours: 72", "lookback_hours: 12"))
    with pytest.raises(PolicyFileError, match=r"square\.orders.*lookback_hours must be >= 72"):
        load_policies(bad)
    bad.write_text(text.replace("warn_after_minutes: 90", "warn_after_minutes: 900"))
    with pytest.raises(
        PolicyFileError, match=r"logikal\.directories.*warn_after_minutes < fail_after_minutes"
    ):
        load_policies(bad)


def test_dagster_validates_the_code_location(tmp_path: Path) -> None:
    root = Path(__file__).parents[1]
    # The repository's dagster.yaml wants PostgreSQL; validate on the local (SQLite) copy of it.
    write_local_instance_yaml(tmp_path)
    # pyproject.toml's [tool.dagster] (workspace.yaml points at a running code server instead)
    result = run_python(
        "-m", "dagster", "definitions", "validate", cwd=root, env={"DAGSTER_HOME": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_the_project_sync_knobs_come_from_the_policy_file(tmp_path: Path) -> None:
    policy = policies().logikal.project_sync
    assert policy.sweep_every.total_seconds() == policy.sweep_every_hours * 3600
    logikal = policies().logikal
    assert policy.warn_after == min(
        p.warn_after for p in (logikal.phases, logikal.elevations, logikal.parts_lists)
    )
    assert policy.backoff is logikal.failure_backoff
    text = (Path(__file__).parents[1] / "logikal_square_sync" / "policies.yaml").read_text()
    bad = tmp_path / "policies.yaml"
    bad.write_text(text.replace("dormant_warn_after_hours: 30", "dormant_warn_after_hours: 60"))
    with pytest.raises(PolicyFileError, match=r"logikal\.project_sync.*dormant_warn_after_hours <"):
        load_policies(bad)


def test_importing_the_definitions_builds_and_writes_nothing(tmp_path: Path) -> None:
    """Dagster builds `defs` lazily; the import alone makes no `.data` folder or database."""
    probe = (
        "import dagster as dg, logikal_square_sync.definitions as d; "
        "assert not isinstance(d.defs, dg.Definitions), type(d.defs)"
    )
    done = run_python("-c", probe, cwd=tmp_path, unset=("LSS_DATA_DIR", "WAREHOUSE_URL"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []


def test_loading_the_code_location_imports_no_parser_or_migration_library(tmp_path: Path) -> None:
    """pandas (and numpy) and alembic are imported where a parts list is parsed or a schema migrated,
    SQLAlchemy's PostgreSQL dialect with the first PostgreSQL connection, httpx (and the rich it
    loads) where a client is opened.

    Together they took longer to import than the rest of the code location, which every Dagster
    process loading it (the code server, each run, whatever its storage) paid.
    """
    deferred = (
        "pandas",
        "numpy",
        "alembic",
        "matplotlib",
        "sqlalchemy.dialects.postgresql",
        "httpx",
        "rich",
        "logikal_square_sync_sandbox",
        "logikal_square_sync.interfaces",
    )
    probe = (
        "import sys, logikal_square_sync.definitions as d; d._defs_of_this_process(); "
        f"print(sorted(m for m in {deferred!r} if m in sys.modules))"
    )
    done = run_python("-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_schedule_names_follow_the_objects_not_the_crons(tmp_path: Path) -> None:
    """Moving the orders cron gives the orders a schedule of their own; no name changes its objects."""
    from logikal_square_sync.square.schedules import square_schedules

    def targets(square: SquarePolicies) -> dict[str, str | Sequence[str]]:
        return {s.name: s.cron_schedule for s in square_schedules(square)}

    assert targets(load_policies().square) == {"square_daily_sync": "0 2 * * *"}
    override = tmp_path / "override.yaml"
    override.write_text("square:\n  orders:\n    cron: '0 1 * * *'\n")
    assert targets(load_policies(override=override).square) == {
        "square_locations_catalog_inventory_sync": "0 2 * * *",
        "square_orders_sync": "0 1 * * *",
    }


def test_asset_pages_link_the_code_that_defines_them(monkeypatch) -> None:
    key = dg.AssetKey(["square", "orders"])
    source = Path(__file__).parents[1] / "logikal_square_sync" / "square" / "assets.py"
    spec, factory = (
        _load(monkeypatch).resolve_asset_graph().get(key).metadata["dagster/code_references"].code_references
    )
    assert Path(spec.file_path) == Path(factory.file_path) == source
    lines = source.read_text().splitlines()
    # Every Square asset is built by one factory (`square_asset`): the page links the asset's own
    # spec first, then the factory's decorated function.
    assert lines[spec.line_number - 1].startswith("square_orders = square_asset(")
    assert lines[factory.line_number - 1].strip() == "@dg.asset("
    assert any("def square_sync(" in line for line in lines[factory.line_number - 1 :][:30])
    linked = _load(monkeypatch, LSS_SOURCE_URL="https://github.com/example/lss", LSS_SOURCE_BRANCH="release")
    urls = linked.resolve_asset_graph().get(key).metadata["dagster/code_references"].code_references
    assert [url.url for url in urls] == [
        f"https://github.com/example/lss/tree/release/logikal_square_sync/square/assets.py#L{local.line_number}"
        for local in (spec, factory)
    ]

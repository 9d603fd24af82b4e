"""The run purge on real Dagster instances (SQLite and PostgreSQL storage), with runs made old by the clock.

The assets stand in for ours with their keys and the dynamic partitions `logikal_projects`:
what the purge reads is the instance's history, not what an asset writes.
"""

import uuid
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest
import time_machine
from dagster._core.storage.compute_log_manager import ComputeIOType

from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME, logikal_projects_partitions
from logikal_square_sync.maintenance.jobs import PURGE_JOB, purge_job
from logikal_square_sync.maintenance.purge import purge_runs
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.instances import instance_for_test, postgres_instance_for_test
from logikal_square_sync_tests.postgres import POSTGRES_ADMIN_URL

ORDERS = dg.AssetKey(["square", "orders"])
PHASES = dg.AssetKey(["logikal", "phases"])
OLD = ANCHOR - timedelta(days=120)
MONTH_AGO = ANCHOR - timedelta(days=30)
CUTOFF = ANCHOR - timedelta(days=90)


class SyncConfig(dg.Config):
    version: int = 1
    fail: bool = False


@dg.asset(key=ORDERS)
def orders(config: SyncConfig) -> dg.MaterializeResult:
    print(f"orders sync, version {config.version}")  # the compute log the purge must delete
    if config.fail:
        raise RuntimeError("the sync failed")
    return dg.MaterializeResult(metadata={"version": config.version})


@dg.asset_check(asset=orders, name="orders_complete")
def orders_complete() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset(key=PHASES, partitions_def=logikal_projects_partitions)
def phases(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
    print(f"phases of {context.partition_key}, version {config.version}")
    if config.fail:
        raise RuntimeError("the project is open in LogiKal")
    return dg.MaterializeResult(metadata={"version": config.version})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instance(request: pytest.FixtureRequest) -> Iterator[dg.DagsterInstance]:
    if request.param == "sqlite":
        with instance_for_test() as sqlite_instance:
            yield sqlite_instance
        return
    request.getfixturevalue("postgres_database")  # skips (or fails under CI) without PostgreSQL
    with postgres_instance_for_test(POSTGRES_ADMIN_URL) as postgres_instance:
        yield postgres_instance


def _synced(
    instance: dg.DagsterInstance,
    assets: list[dg.AssetsDefinition],
    step: str,
    config: SyncConfig,
    *,
    selection: dg.AssetSelection | None = None,
    partition_key: str | None = None,
) -> str:
    """A run of `assets` whose sync step `step` writes `config.version` (or fails); its run id."""
    result = dg.materialize(
        assets,
        selection=selection,
        partition_key=partition_key,
        instance=instance,
        run_config=dg.RunConfig({step: config}),
        raise_on_error=False,
    )
    assert result.success is not config.fail
    return result.run_id


def _orders(instance: dg.DagsterInstance, version: int, *, check: bool = False, fail: bool = False) -> str:
    selection = (
        dg.AssetSelection.assets(ORDERS) if check else dg.AssetSelection.assets(ORDERS).without_checks()
    )
    assets = [orders, orders_complete]
    return _synced(
        instance, assets, "square__orders", SyncConfig(version=version, fail=fail), selection=selection
    )


def _check_only(instance: dg.DagsterInstance) -> str:
    result = dg.materialize(
        [orders, orders_complete], selection=dg.AssetSelection.checks(orders_complete), instance=instance
    )
    assert result.success
    return result.run_id


def _phases(instance: dg.DagsterInstance, project: str, version: int, *, fail: bool = False) -> str:
    config = SyncConfig(version=version, fail=fail)
    return _synced(instance, [phases], "logikal__phases", config, partition_key=project)


def _history(instance: dg.DagsterInstance, clock: time_machine.Traveller) -> dict[str, str]:
    """Runs 120 days old, 30 days old and of today, named by what the purge must do with them."""
    clock.move_to(OLD)
    instance.add_dynamic_partitions(PROJECTS_PARTITIONS_NAME, ["A", "B", "C"])
    runs = {
        "orders v1 with its check": _orders(instance, 1, check=True),
        "orders v2": _orders(instance, 2),
        "orders failed": _orders(instance, 0, fail=True),
        "KEEP latest check execution": _check_only(instance),
        "project A v1": _phases(instance, "A", 1),
        "KEEP latest of project A": _phases(instance, "A", 2),
        "project B v1": _phases(instance, "B", 1),
        "KEEP latest attempt of project C": _phases(instance, "C", 1, fail=True),
    }
    # A run whose worker died long ago and that run monitoring has not ended: not ours to delete.
    started = dg.DagsterRun(
        job_name="square_daily_sync", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
    )
    instance.add_run(started)
    instance.report_engine_event("the worker started", started)
    runs["KEEP unfinished"] = started.run_id
    clock.move_to(MONTH_AGO)
    runs["KEEP younger than the retention"] = _orders(instance, 3)
    clock.move_to(ANCHOR)
    runs["KEEP today's orders"] = _orders(instance, 4)
    runs["KEEP today's project B"] = _phases(instance, "B", 2)
    return runs


def _compute_log(instance: dg.DagsterInstance, run_id: str) -> str:
    manager = instance.compute_log_manager
    try:
        keys = manager.get_log_keys_for_log_key_prefix([run_id, "compute_logs"], ComputeIOType.STDOUT)
    except FileNotFoundError:  # the local manager's answer once the run's folder is gone
        return ""
    return "".join((manager.get_log_data(key).stdout or b"").decode() for key in keys)


def _assert_purged(instance: dg.DagsterInstance, runs: dict[str, str]) -> None:
    for name, run_id in runs.items():
        if name.startswith("KEEP"):
            assert instance.get_run_record_by_id(run_id) is not None, name
            assert instance.get_records_for_run(run_id).records, name
        else:
            assert instance.get_run_record_by_id(run_id) is None, name
            assert not instance.get_records_for_run(run_id).records, name
            assert _compute_log(instance, run_id) == "", name
    # What the asset pages show is what they showed before the purge.
    latest = instance.get_latest_materialization_event(ORDERS)
    assert latest is not None and latest.asset_materialization is not None
    assert latest.asset_materialization.metadata["version"] == dg.IntMetadataValue(4)
    project_a = instance.fetch_materializations(
        dg.AssetRecordsFilter(PHASES, asset_partitions=["A"]), limit=1
    )
    assert project_a.records[0].run_id == runs["KEEP latest of project A"]
    assert project_a.records[0].asset_materialization is not None
    assert project_a.records[0].asset_materialization.metadata["version"] == dg.IntMetadataValue(2)
    assert instance.get_materialized_partitions(PHASES) == {"A", "B"}
    check = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(ORDERS, "orders_complete"))
    assert check is not None and check.run_id == runs["KEEP latest check execution"]


def test_the_purge_job_deletes_old_runs_but_keeps_what_the_ui_shows(
    instance: dg.DagsterInstance, pinned_clock: time_machine.Traveller
) -> None:
    runs = _history(instance, pinned_clock)
    assert "orders sync, version 1" in _compute_log(instance, runs["orders v1 with its check"])

    result = purge_job().execute_in_process(instance=instance)

    assert result.success and result.dagster_run.job_name == PURGE_JOB
    _assert_purged(instance, runs)
    step = result.get_step_success_events()[0]
    output = next(e for e in result.all_events if e.is_successful_output and e.step_key == step.step_key)
    metadata = output.step_output_data.metadata
    assert metadata["runs_deleted"] == dg.IntMetadataValue(5)
    assert metadata["old_runs_kept"] == dg.IntMetadataValue(3)  # the unfinished one is never looked at
    assert metadata["more_remain"] == dg.BoolMetadataValue(False)


def test_a_purge_stops_at_its_batch_and_the_next_one_goes_on(
    instance: dg.DagsterInstance, pinned_clock: time_machine.Traveller
) -> None:
    runs = _history(instance, pinned_clock)

    batches = []
    while True:
        batch = purge_runs(instance, CUTOFF, max_runs=2)
        batches.append((len(batch.deleted), batch.more))
        if not batch.deleted:
            break

    assert batches == [(2, True), (2, True), (1, False), (0, False)]
    _assert_purged(instance, runs)
    kept = purge_runs(instance, CUTOFF, max_runs=2).kept
    assert kept == {
        runs["KEEP latest check execution"]: ["the latest execution of check square/orders:orders_complete"],
        runs["KEEP latest of project A"]: ["the latest materialization of logikal/phases [A]"],
        runs["KEEP latest attempt of project C"]: [
            "the latest materialization attempt of logikal/phases [C]"
        ],
    }

"""The LogiKal session budget across runs: a 12-project backfill on a real Dagster instance.

The instance stores its runs and concurrency slots in PostgreSQL (as in production);
six project runs go at once (the run queue's `max_concurrent_runs`), each in a process
of its own like a run worker (Dagster's in-process execution is not thread-safe), each with a pool
that would take the whole budget, against a sandbox that refuses sibling elevation
selects, so every run wants many logins. The sandbox counts the sessions open at once.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import dagster as dg
import pytest

from logikal_square_sync.logikal.assets import logikal_directories, logikal_projects
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.logikal.session_budget import SESSIONS_POOL, DagsterSessionBudget
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.logikal import LogikalSandbox
from logikal_square_sync_tests.instances import instance_for_test
from logikal_square_sync_tests.logikal.project_sync_definitions import project_sync_definitions
from logikal_square_sync_tests.logikal.sandbox_runs import Logikal, sandbox_config
from logikal_square_sync_tests.logikal.source_truth import assert_warehouse_equals_source
from logikal_square_sync_tests.postgres import empty_all_tables

BUDGET = policies().logikal.sessions.budget
RUNS_AT_ONCE = 6  # dagster.yaml: run_queue max_concurrent_runs


@pytest.fixture
def sandbox() -> LogikalSandbox:
    # 12 projects of 2 phases x 3 elevations; no sibling selects: one login per parts list.
    # Latencies at 2 % (a login ~0.1-0.2 s), so the runs overlap without a slow test.
    return LogikalSandbox(
        sandbox_config(
            root_directories=2,
            projects_per_directory=2,
            elevations_per_phase=3,
            allow_sibling_elevation_select=False,
            time_scale=0.02,
        )
    )


@pytest.fixture
def instance(postgres_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    return postgres_instance


def _run_project(instance_ref: object, logikal_url: str, warehouse_url: str, project: str) -> bool:
    """One project run in a process of its own (a run worker), on the shared instance."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:  # type: ignore[arg-type]
        job = project_sync_definitions(logikal_url, warehouse_url).resolve_job_def(logikal_project_sync.name)
        return job.execute_in_process(partition_key=project, instance=instance).success


@pytest.fixture
def defs(logikal_url: str, postgres_database: str) -> dg.Definitions:
    empty_all_tables(warehouse_engine(postgres_database))
    return project_sync_definitions(logikal_url, postgres_database)


@pytest.mark.postgres
def test_a_12_project_backfill_never_holds_more_sessions_than_the_budget(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sandbox: LogikalSandbox,
    logikal_url: str,
    postgres_database: str,
) -> None:
    discovery = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[logikal_directories.key, logikal_projects.key]
    )
    assert discovery.success
    projects = sorted(instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))
    assert len(projects) == 12

    sandbox.reset_stats()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=RUNS_AT_ONCE, mp_context=spawn) as workers:
        runs = [
            workers.submit(_run_project, instance.get_ref(), logikal_url, postgres_database, project)
            for project in projects
        ]
        assert [run.result() for run in runs] == [True] * len(projects)

    stats = sandbox.stats
    # Refused sibling selects: a login per parts list (6 per project), so the runs competed.
    assert stats.logins >= 12 * 6
    assert stats.max_concurrent_sessions <= BUDGET
    # Not a serial sync in disguise: the budget was used.
    assert stats.max_concurrent_sessions == BUDGET
    assert stats.active_sessions == 0
    info = instance.event_log_storage.get_concurrency_info(SESSIONS_POOL)
    assert info.slot_count == BUDGET
    assert info.claimed_slots == []
    assert info.pending_steps == []
    assert_warehouse_equals_source(warehouse_engine(postgres_database), sandbox)


@pytest.mark.postgres
def test_a_run_waits_for_a_slot_that_another_run_holds(instance: dg.DagsterInstance) -> None:
    """Claims are per session: a run holding the whole budget leaves none; a freed slot is the next run's."""
    first = DagsterSessionBudget(instance, "run-a", "logikal_project_contents", 2)
    second = DagsterSessionBudget(instance, "run-b", "logikal_project_contents", 2)
    held = [slot for slot in (first.try_claim(), first.try_claim()) if slot is not None]
    assert len(held) == 2
    assert second.try_claim() is None
    # A refused claim leaves nothing queued: the pool asks again when it still needs a session.
    pending = instance.event_log_storage.get_concurrency_info(SESSIONS_POOL).pending_steps
    assert [step.run_id for step in pending] == ["run-a", "run-a"]  # a claimed slot shows as an assigned step
    first.free(held[0])
    assert second.try_claim() is not None
    # A run that died with slots claimed: run monitoring frees its slots by run id.
    instance.event_log_storage.free_concurrency_slots_for_run("run-a")
    assert second.try_claim() is not None
    assert second.try_claim() is None


def test_pools_of_three_runs_share_one_budget(sandbox: LogikalSandbox, logikal: Logikal, engine) -> None:
    """Three project syncs at once, each pool sized 4, on a budget of 2: never more than 2 logins open."""
    with logikal.pool() as pool:
        sync_directories(pool, engine)
    with logikal.pool() as pool:
        sync_projects(pool, engine)
    projects = [project["id"] for project in sandbox.projects()][:3]
    sandbox.reset_stats()
    with instance_for_test() as instance:

        def run(project_id: str) -> int:
            budget = DagsterSessionBudget(instance, f"run-{project_id}", "step", 2, poll_seconds=0.05)
            with SessionPool(logikal.settings(), 4, budget=budget) as pool:
                return sync_project_contents(pool, engine, project_id).parts_lists_fetched

        with ThreadPoolExecutor(max_workers=3) as runs:
            assert sum(runs.map(run, projects)) == 3 * 6
        info = instance.event_log_storage.get_concurrency_info(SESSIONS_POOL)
        assert info.claimed_slots == []
    stats = sandbox.stats
    assert stats.logins >= 3 * 6  # one login per parts list: every pool wanted 4 sessions
    assert stats.max_concurrent_sessions == 2
    assert stats.active_sessions == 0

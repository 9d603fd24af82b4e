"""The session bank on a real Dagster instance: its slots are claims of the pool `logikal_sessions`.

The engine's rules (renewal, give-back, invalid tokens, one taker per token) are in
engine/client/test_session_bank.py; here the slots move between the bank and a run in
Dagster's own concurrency tables (SQLite and PostgreSQL storage), and a force-sync run
starts on the bank's tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.logikal.assets import logikal_directories, logikal_projects
from logikal_square_sync.logikal.engine.client.navigation import ROOT, Target
from logikal_square_sync.logikal.engine.client.session_bank import BankPolicy, SessionBank, TokenShelf
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.logikal.session_bank import (
    BANK_RUN_ID,
    BankedTokens,
    DagsterBankSlots,
    bank_policy,
    clear_dead_bank,
)
from logikal_square_sync.logikal.session_budget import SESSIONS_POOL, DagsterSessionBudget
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.logikal import LogikalSandbox
from logikal_square_sync_tests.logikal.project_sync_definitions import project_sync_definitions
from logikal_square_sync_tests.logikal.sandbox_runs import Logikal

POLICY = BankPolicy(size=3, renew_after=timedelta(minutes=20), keep_free=1)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _bank(logikal: Logikal, engine: sa.Engine, instance: dg.DagsterInstance) -> SessionBank:
    slots = DagsterBankSlots(instance, 4)
    return SessionBank(logikal.settings(), TokenShelf(engine), slots, POLICY, clock=lambda: NOW)


def _claimed(instance: dg.DagsterInstance) -> list[str]:
    return [
        slot.run_id for slot in instance.event_log_storage.get_concurrency_info(SESSIONS_POOL).claimed_slots
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dagster_instance(request: pytest.FixtureRequest) -> dg.DagsterInstance:
    return request.getfixturevalue("instance" if request.param == "sqlite" else "postgres_instance")


def test_a_run_takes_a_banked_token_with_a_slot_of_its_own(
    logikal: Logikal, sandbox: LogikalSandbox, engine: sa.Engine, dagster_instance: dg.DagsterInstance
) -> None:
    bank = _bank(logikal, engine, dagster_instance)
    bank.tick()
    assert _claimed(dagster_instance) == [BANK_RUN_ID] * 3
    run_budget = DagsterSessionBudget(
        dagster_instance, "run-a", "logikal_project_contents", 4, poll_seconds=0.01
    )
    tokens = BankedTokens(engine, dagster_instance, POLICY.renew_after, clock=lambda: NOW)
    with SessionPool(logikal.settings(), 1, budget=run_budget, tokens=tokens) as pool:
        session = pool.acquire(Target(ROOT))
        assert session.list_directories()
        # The run's slot claimed, the bank's for that token freed: the session counts once.
        assert sorted(_claimed(dagster_instance)) == [BANK_RUN_ID] * 2 + ["run-a"]
        pool.release(session)
        assert pool.stats.logins == 0
    run_budget.free_all()
    # The run claims the slot the bank keeps free: the bank gives one token back for it.
    other = DagsterSessionBudget(dagster_instance, "run-b", "step", 4)
    assert other.try_claim() is not None and other.try_claim() is not None
    bank.tick()
    assert sorted(_claimed(dagster_instance)) == [BANK_RUN_ID] + ["run-b"] * 2
    assert sandbox.stats.max_concurrent_sessions <= 4
    bank.close()
    other.free_all()
    assert _claimed(dagster_instance) == []
    assert sandbox.stats.active_sessions == 0


def test_a_dead_banks_slots_and_tokens_are_cleared(
    logikal: Logikal, sandbox: LogikalSandbox, engine: sa.Engine, dagster_instance: dg.DagsterInstance
) -> None:
    dead = _bank(logikal, engine, dagster_instance)
    dead.tick()  # and never closed: its process died
    assert sandbox.stats.active_sessions == 3
    clear_dead_bank(engine, dagster_instance, logikal.settings())
    assert _claimed(dagster_instance) == []
    assert TokenShelf(engine).entries() == []
    assert sandbox.stats.active_sessions == 0


def test_a_run_frees_the_slots_of_a_bank_that_stopped_renewing(
    logikal: Logikal, engine: sa.Engine, instance: dg.DagsterInstance
) -> None:
    stopped = _bank(logikal, engine, instance)
    stopped.tick()
    later = NOW + 2 * POLICY.renew_after + timedelta(seconds=1)
    assert BankedTokens(engine, instance, POLICY.renew_after, clock=lambda: later).take() is None
    assert _claimed(instance) == []
    assert TokenShelf(engine).entries() == []


def test_a_force_sync_run_starts_on_the_banks_tokens(
    logikal: Logikal,
    sandbox: LogikalSandbox,
    warehouse_url: str,
    instance: dg.DagsterInstance,
) -> None:
    defs = project_sync_definitions(logikal.url, warehouse_url)
    engine = warehouse_engine(warehouse_url)
    discovery = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[logikal_directories.key, logikal_projects.key]
    )
    assert discovery.success
    project = sorted(instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))[0]
    bank = SessionBank(logikal.settings(), TokenShelf(engine), DagsterBankSlots(instance, 4), bank_policy())
    bank.tick()
    banked = bank.held
    assert banked >= 1
    sandbox.reset_stats()
    job = defs.resolve_job_def(logikal_project_sync.name)
    assert job.execute_in_process(partition_key=project, instance=instance).success
    taken = banked - len(TokenShelf(engine).entries())
    assert taken >= 1
    # The run logged out every session it used, the banked ones too; the bank's rest wait.
    assert sandbox.stats.active_sessions == banked - taken
    assert _claimed(instance) == [BANK_RUN_ID] * (banked - taken)
    bank.close()
    assert _claimed(instance) == []
    assert sandbox.stats.active_sessions == 0


def test_background_runs_leave_the_banks_tokens_to_force_syncs(
    logikal: Logikal, sandbox: LogikalSandbox, warehouse_url: str, instance: dg.DagsterInstance
) -> None:
    defs = project_sync_definitions(logikal.url, warehouse_url)
    engine = warehouse_engine(warehouse_url)
    assert (
        defs.resolve_implicit_global_asset_job_def()
        .execute_in_process(
            instance=instance, asset_selection=[logikal_directories.key, logikal_projects.key]
        )
        .success
    )
    project = sorted(instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))[0]
    bank = SessionBank(logikal.settings(), TokenShelf(engine), DagsterBankSlots(instance, 4), bank_policy())
    bank.tick()
    job = defs.resolve_job_def(logikal_project_sync.name)
    tags = {"dagster/sensor_name": "logikal_project_sync_sensor"}
    assert job.execute_in_process(partition_key=project, instance=instance, tags=tags).success
    assert len(TokenShelf(engine).entries()) == bank.held
    bank.close()

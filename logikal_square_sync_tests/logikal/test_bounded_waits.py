"""Nothing in a LogiKal run waits for ever: sessions that cannot be had fail the run, and the lock
that serializes session claims is waited for only up to its bound.

On a Dagster instance in PostgreSQL (as in production), where the session budget's slots
and the claim lock live. Every wait in these tests runs under a watchdog, so a regression
fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.logikal.assets import logikal_directories, logikal_projects
from logikal_square_sync.logikal.engine.client.errors import LogikalAuthError, LogikalSessionError
from logikal_square_sync.logikal.engine.client.navigation import ROOT, Target
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME
from logikal_square_sync.logikal.session_budget import (
    _CLAIM_LOCK_KEY,
    SESSIONS_POOL,
    DagsterSessionBudget,
    SessionClaimLockTimeout,
)
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.logikal import LogikalSandbox
from logikal_square_sync_tests.logikal.project_sync_definitions import project_sync_definitions
from logikal_square_sync_tests.logikal.sandbox_runs import Logikal
from logikal_square_sync_tests.postgres import empty_all_tables

pytestmark = pytest.mark.postgres

T = TypeVar("T")
WATCHDOG_SECONDS = 120  # far above every bound here: only a hang reaches it
# An unsupported proxy scheme: httpx refuses it when a session's client is built (as a
# misspelt HTTPS_PROXY of the code server's environment would).
BROKEN_PROXY = "ftp://proxy.invalid:21"


def within_watchdog(call: Callable[[], T]) -> T:
    """`call()` in a thread; fails the test if it has not returned or raised within the watchdog."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WATCHDOG_SECONDS)
    assert not thread.is_alive(), f"still waiting after {WATCHDOG_SECONDS} s: a wait without a bound"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def claimed_slots(instance: dg.DagsterInstance) -> list[Any]:
    return instance.event_log_storage.get_concurrency_info(SESSIONS_POOL).claimed_slots


# -- the pool ------------------------------------------------------------------------------


@pytest.fixture
def budget(postgres_instance: dg.DagsterInstance) -> DagsterSessionBudget:
    return DagsterSessionBudget(postgres_instance, "run-a", "logikal_project_contents", 2, poll_seconds=0.05)


def _prewarm_then_acquire(pool: SessionPool) -> None:
    # A first sync's start: the whole pool logs in in the background, then a worker asks for one.
    pool.prewarm(pool.size, Target(ROOT))
    pool.acquire(Target(ROOT))


def test_a_session_that_cannot_be_created_fails_acquire_with_its_cause_and_frees_every_slot(
    logikal: Logikal,
    budget: DagsterSessionBudget,
    postgres_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", BROKEN_PROXY)
    pool = SessionPool(logikal.settings(), 2, budget=budget)
    with pytest.raises(LogikalSessionError) as error:
        within_watchdog(lambda: _prewarm_then_acquire(pool))
    within_watchdog(pool.close)
    assert "cannot open a LogiKal session" in str(error.value) and "proxy" in str(error.value)
    # The cause is kept: the pool's failure, and under it httpx's own error.
    assert isinstance(error.value.__cause__, LogikalSessionError)
    assert isinstance(error.value.__cause__.__cause__, ValueError)
    assert claimed_slots(postgres_instance) == []
    assert logikal.sandbox.stats.logins == 0


def test_a_refused_login_fails_acquire_at_once_and_frees_every_slot(
    logikal: Logikal, budget: DagsterSessionBudget, postgres_instance: dg.DagsterInstance
) -> None:
    logikal.password = "not-the-password"
    pool = SessionPool(logikal.settings(), 2, budget=budget)
    with pytest.raises(LogikalAuthError, match="refused the login"):
        within_watchdog(lambda: _prewarm_then_acquire(pool))
    within_watchdog(pool.close)
    assert claimed_slots(postgres_instance) == []
    # No login after the first refusal is known: repeated refusals may lock the account.
    assert logikal.sandbox.stats.failed_logins <= pool.size


# -- the claim lock ----------------------------------------------------------------------


def test_a_claim_waits_for_a_held_claim_lock_only_up_to_its_bound(
    postgres_instance: dg.DagsterInstance,
) -> None:
    budget = DagsterSessionBudget(postgres_instance, "run-a", "step", 2, lock_timeout_seconds=0.5)
    url = postgres_instance.event_log_storage.postgres_url  # type: ignore[attr-defined]
    other = sa.create_engine(url)
    try:
        with other.connect() as holder:
            # A claimer whose connection hangs with the lock held (a stuck process, a network cut).
            holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _CLAIM_LOCK_KEY})
            holder_pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            started = time.monotonic()
            with pytest.raises(SessionClaimLockTimeout) as error:
                within_watchdog(budget.try_claim)
            waited = time.monotonic() - started
            holder.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _CLAIM_LOCK_KEY})
    finally:
        other.dispose()
    message = str(error.value)
    assert "lock_timeouts.session_claim_seconds" in message and f"pid {holder_pid}" in message
    assert waited >= 0.45
    assert isinstance(error.value.__cause__, sa.exc.OperationalError)
    assert claimed_slots(postgres_instance) == []
    # The lock free again, the same budget claims; the connection's lock_timeout was put back.
    assert within_watchdog(budget.try_claim) is not None
    with postgres_instance.event_log_storage.index_connection() as conn:  # type: ignore[attr-defined]
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar_one() == "0"


# -- a whole run ---------------------------------------------------------------------------


def _error_chain(result: dg.ExecuteInProcessResult) -> str:
    """Every message of the failed steps' errors and their causes."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(f"{error.cls_name}: {error.message}")
                error = error.cause or error.context
    return "\n".join(texts)


@pytest.fixture
def discovered(
    logikal_url: str, sandbox: LogikalSandbox, postgres_database: str, postgres_instance: dg.DagsterInstance
) -> Iterator[str]:
    """The warehouse and instance after logikal/directories and logikal/projects: the first project's id."""
    empty_all_tables(warehouse_engine(postgres_database))
    defs = project_sync_definitions(logikal_url, postgres_database, sandbox.config.password)
    discovery = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=postgres_instance, asset_selection=[logikal_directories.key, logikal_projects.key]
    )
    assert discovery.success
    yield sorted(postgres_instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))[0]


@pytest.mark.parametrize("failure", ["login refused", "session cannot be created"])
def test_a_run_whose_sessions_cannot_be_had_fails_with_the_cause_and_the_next_run_proceeds(
    failure: str,
    discovered: str,
    logikal_url: str,
    sandbox: LogikalSandbox,
    postgres_database: str,
    postgres_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = sandbox.config.password
    if failure == "login refused":
        password = "not-the-password"
    else:
        monkeypatch.setenv("ALL_PROXY", BROKEN_PROXY)
    defs = project_sync_definitions(logikal_url, postgres_database, password)
    job = defs.resolve_job_def(logikal_project_sync.name)
    # A first sync of the project: its run logs in the whole pool in the background at once.
    failed = within_watchdog(
        lambda: job.execute_in_process(
            partition_key=discovered, instance=postgres_instance, raise_on_error=False
        )
    )
    assert not failed.success
    errors = _error_chain(failed)
    if failure == "login refused":
        assert "LogikalAuthError" in errors and "refused the login of user 'sandbox'" in errors
    else:
        assert "LogikalSessionError" in errors and "Unknown scheme for proxy URL" in errors
    # Every slot is free, in every pool.
    storage = postgres_instance.event_log_storage
    assert {
        key: storage.get_concurrency_info(key).claimed_slots for key in storage.get_concurrency_keys()
    } == {SESSIONS_POOL: []} | {key: [] for key in storage.get_concurrency_keys()}

    # Fixed, the next run of the project proceeds.
    monkeypatch.delenv("ALL_PROXY", raising=False)
    job = project_sync_definitions(logikal_url, postgres_database, sandbox.config.password).resolve_job_def(
        logikal_project_sync.name
    )
    again = within_watchdog(
        lambda: job.execute_in_process(partition_key=discovered, instance=postgres_instance)
    )
    assert again.success
    assert claimed_slots(postgres_instance) == []

"""The session bank's rules, on the sandbox over HTTP and the warehouse (SQLite and PostgreSQL).

The budget here is an in-process one shared by the bank and the "runs" of a test (the Dagster
pool `logikal_sessions` is checked in logikal/test_session_bank_dagster.py); the sandbox counts
the server sessions really open.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from logikal_square_sync.logikal.engine.client.navigation import ROOT, Target
from logikal_square_sync.logikal.engine.client.planner import DEFAULT_COSTS
from logikal_square_sync.logikal.engine.client.session import ConnectionSettings
from logikal_square_sync.logikal.engine.client.session_bank import BankPolicy, SessionBank, TokenShelf
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync_sandbox.logikal import LogikalSandbox
from logikal_square_sync_tests.logikal.sandbox_runs import Logikal, sync_everything

AT_ROOT = Target(ROOT)
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
POLICY = BankPolicy(size=3, renew_after=timedelta(minutes=20), keep_free=1)


class SharedBudget:
    """One budget of `limit` slots for the bank and the runs of a test; it refuses any claim beyond."""

    poll_seconds = 0.01

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._claims: dict[str, str] = {}  # claim -> holder
        self._numbers = itertools.count(1)
        self.most_claimed = 0

    def holder(self, name: str) -> HolderBudget:
        return HolderBudget(self, name)

    def claim(self, holder: str) -> str | None:
        with self._lock:
            if len(self._claims) >= self.limit:
                return None
            claim = f"{holder}-{next(self._numbers)}"
            self._claims[claim] = holder
            self.most_claimed = max(self.most_claimed, len(self._claims))
            return claim

    def free(self, claim: str) -> None:
        with self._lock:
            self._claims.pop(claim, None)

    def held(self, holder: str | None = None) -> int:
        with self._lock:
            return sum(1 for h in self._claims.values() if holder is None or h == holder)


class HolderBudget:
    """What one holder (the bank, a run) sees of the shared budget."""

    poll_seconds = 0.01

    def __init__(self, shared: SharedBudget, name: str) -> None:
        self.shared = shared
        self.name = name
        self.limit = shared.limit

    def try_claim(self) -> str | None:
        return self.shared.claim(self.name)

    def free(self, claim: str) -> None:
        self.shared.free(claim)

    def free_all(self) -> None:
        pass

    def held_by_others(self) -> int:
        return self.shared.held() - self.shared.held(self.name)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class ShelfTokens:
    """A run's token source on the shelf, freeing the bank's slot like `BankedTokens` does."""

    def __init__(self, shelf: TokenShelf, budget: SharedBudget, clock: Clock) -> None:
        self.shelf, self.budget, self.clock = shelf, budget, clock

    def take(self) -> str | None:
        banked = self.shelf.take(logged_in_after=self.clock() - POLICY.renew_after)
        if banked is None:
            return None
        self.budget.free(banked.slot)
        return banked.token


def _bank(logikal: Logikal, engine: sa.Engine, budget: SharedBudget, clock: Clock) -> SessionBank:
    return SessionBank(logikal.settings(), TokenShelf(engine), budget.holder("bank"), POLICY, clock=clock)


def _ticked_bank(logikal: Logikal, engine: sa.Engine, limit: int) -> tuple[SharedBudget, SessionBank]:
    budget = SharedBudget(limit)
    bank = _bank(logikal, engine, budget, Clock())
    bank.tick()
    return budget, bank


@dataclass
class Filled:
    """A bank filled on a budget of 4, and a run's token source on its shelf."""

    budget: SharedBudget
    clock: Clock
    bank: SessionBank
    tokens: ShelfTokens
    settings: ConnectionSettings

    def run_pool(self, size: int) -> SessionPool:
        """A run's pool on the shared budget, starting its sessions on the bank's tokens."""
        return SessionPool(self.settings, size, budget=self.budget.holder("run"), tokens=self.tokens)


@pytest.fixture
def filled(logikal: Logikal, engine: sa.Engine) -> Iterator[Filled]:
    budget, clock = SharedBudget(limit=4), Clock()
    bank = _bank(logikal, engine, budget, clock)
    bank.tick()
    yield Filled(budget, clock, bank, ShelfTokens(TokenShelf(engine), budget, clock), logikal.settings())
    bank.close()


def test_the_bank_fills_up_to_its_size_leaving_slots_free(
    logikal: Logikal, sandbox: LogikalSandbox, engine: sa.Engine
) -> None:
    budget, bank = _ticked_bank(logikal, engine, limit=3)
    # size 3, but a budget of 3 with one slot kept free for runs: 2.
    assert bank.held == 2
    assert sandbox.stats.active_sessions == 2
    assert len(TokenShelf(engine).entries()) == 2
    bank.close()
    assert sandbox.stats.active_sessions == 0
    assert budget.held() == 0
    assert TokenShelf(engine).entries() == []


def test_the_bank_gives_slots_back_when_runs_need_them(
    logikal: Logikal, sandbox: LogikalSandbox, engine: sa.Engine
) -> None:
    budget, bank = _ticked_bank(logikal, engine, limit=4)
    assert bank.held == 3
    run = budget.holder("run")
    # A scheduled run claims the slot kept free: the next tick logs a token out for it.
    assert run.try_claim() is not None
    assert budget.held() == 4
    bank.tick()
    assert bank.held == 2
    assert run.try_claim() is not None
    bank.tick()
    assert bank.held == 1
    assert sandbox.stats.active_sessions == 1  # the runs here hold slots, no sessions
    assert budget.most_claimed <= 4
    bank.close()
    assert budget.held("bank") == 0


def test_tokens_are_renewed_before_they_are_too_old_and_an_old_one_is_never_taken(
    logikal: Logikal, sandbox: LogikalSandbox, engine: sa.Engine
) -> None:
    budget, clock = SharedBudget(limit=4), Clock()
    bank = _bank(logikal, engine, budget, clock)
    bank.tick()
    first = {banked.token for banked in TokenShelf(engine).entries()}
    clock.now += POLICY.renew_after - timedelta(seconds=1)
    bank.tick()
    assert {banked.token for banked in TokenShelf(engine).entries()} == first
    clock.now += timedelta(seconds=1)
    bank.tick()
    renewed = {banked.token for banked in TokenShelf(engine).entries()}
    assert len(renewed) == 3
    assert not renewed & first
    assert not set(sandbox.sessions.live_tokens()) & first  # the old ones were logged out
    assert sandbox.stats.active_sessions == 3
    # A shelf no bank renewed (its process stopped ticking): runs leave its tokens alone.
    clock.now += POLICY.renew_after
    assert ShelfTokens(TokenShelf(engine), budget, clock).take() is None
    bank.close()


def test_a_run_starts_on_banked_tokens_without_logging_in(filled: Filled, sandbox: LogikalSandbox) -> None:
    budget, bank = filled.budget, filled.bank
    logins_before = sandbox.stats.logins
    with filled.run_pool(2) as pool:
        first = pool.acquire(AT_ROOT)
        second = pool.acquire(AT_ROOT)
        assert first.list_directories()
        assert second.list_directories()
        pool.release(first)
        pool.release(second)
        assert pool.stats.logins == 0
        assert pool.stats.tokens_adopted == 2
        # Each session counted once: the run's two slots, the bank's one left.
        assert budget.held("run") == 2
        assert budget.held("bank") == 1
    assert sandbox.stats.logins == logins_before
    assert budget.held("run") == 0
    assert sandbox.stats.active_sessions == 1  # the pool logged its two out; the bank's third waits
    bank.tick()  # refills what the run took
    assert bank.held == 3


def test_a_prewarm_takes_every_banked_token_though_the_bank_held_the_budget(
    filled: Filled, sandbox: LogikalSandbox
) -> None:
    """Budget 4, bank 3 (one slot kept free): each claim's token frees a bank slot for the next claim."""
    budget = filled.budget
    assert filled.bank.held == 3
    with filled.run_pool(4) as pool:
        first = pool.acquire(AT_ROOT)
        pool.prewarm(3, AT_ROOT)
        others = [pool.acquire(AT_ROOT) for _ in range(3)]
        assert len({id(session) for session in [first, *others]}) == 4
        assert pool.stats.tokens_adopted == 3
        assert pool.stats.logins == 1
        assert budget.held("run") == 4
        for session in [first, *others]:
            pool.release(session)
    assert budget.most_claimed <= 4
    assert sandbox.stats.max_concurrent_sessions <= 4


@pytest.mark.parametrize(("logins_worth", "logins"), [(1, 0), (3, 0), (4, 1), (None, 1)])
def test_a_prewarm_takes_every_banked_token_but_logs_in_only_where_a_login_pays(
    filled: Filled, sandbox: LogikalSandbox, logins_worth: int | None, logins: int
) -> None:
    """Budget 4, bank 3: the three tokens cost no login; a fourth session only if four are worth one."""
    logins_before = sandbox.stats.logins
    with filled.run_pool(4) as pool:
        pool.prewarm(4, AT_ROOT, logins_worth=logins_worth)
        sessions = [pool.acquire(AT_ROOT) for _ in range(3 + logins)]
        assert len({id(session) for session in sessions}) == 3 + logins
        for session in sessions:
            pool.release(session)
    assert pool.stats.tokens_adopted == 3
    assert pool.stats.logins == logins
    assert sandbox.stats.logins == logins_before + logins
    assert filled.budget.held("run") == 0  # a claim not worth its login was given back at once
    assert filled.budget.most_claimed <= 4


def test_a_refetch_of_a_small_project_runs_on_banked_tokens_without_a_login(
    filled: Filled, logikal: Logikal, engine: sa.Engine, sandbox: LogikalSandbox
) -> None:
    """A force sync with every parts list fetched again: a login for a fourth session would not pay
    (a few elevations), so none is started, and the run never waits for one to end."""
    synced = sync_everything(logikal, engine)
    project_id, first = min(synced.contents.items(), key=lambda item: item[1].parts_lists_fetched)
    assert 0 < first.parts_lists_fetched < 2 * DEFAULT_COSTS.new_phase_session / DEFAULT_COSTS.per_parts_list
    logins_before = sandbox.stats.logins
    with filled.run_pool(4) as pool:
        again = sync_project_contents(pool, engine, project_id, refetch_parts_lists=True)
    assert again.parts_lists_fetched == first.parts_lists_fetched
    assert pool.stats.tokens_adopted >= 1
    assert pool.stats.logins == 0
    assert sandbox.stats.logins == logins_before


def test_an_invalid_banked_token_falls_back_to_a_login(filled: Filled, sandbox: LogikalSandbox) -> None:
    sandbox.expire_token()  # the server forgot them all (say it restarted)
    with filled.run_pool(1) as pool:
        session = pool.acquire(AT_ROOT)
        assert session.list_directories()
        pool.release(session)
        assert pool.stats.tokens_adopted == 1
        assert pool.stats.reauthentications == 1
        assert pool.stats.logins == 1


def test_no_token_is_taken_twice(filled: Filled, engine: sa.Engine) -> None:
    """Eight runs in threads, each with a shelf of its own on the one warehouse, race for three tokens."""
    clock = filled.clock
    banked = {entry.token for entry in TokenShelf(engine).entries()}
    barrier = threading.Barrier(8)

    def race(_: int) -> list[str]:
        shelf = TokenShelf(engine)
        barrier.wait()
        taken = []
        while (entry := shelf.take(logged_in_after=clock() - POLICY.renew_after)) is not None:
            taken.append(entry.token)
        return taken

    with ThreadPoolExecutor(max_workers=8) as runs:
        taken = [token for tokens in runs.map(race, range(8)) for token in tokens]
    assert sorted(taken) == sorted(banked)
    assert TokenShelf(engine).entries() == []
    filled.bank.tick()  # the bank sees them taken and refills
    assert filled.bank.held == 3


def test_a_bank_of_size_zero_holds_nothing(
    logikal: Logikal, sandbox: LogikalSandbox, engine: sa.Engine
) -> None:
    budget = SharedBudget(limit=4)
    policy = BankPolicy(size=0, renew_after=POLICY.renew_after, keep_free=POLICY.keep_free)
    bank = SessionBank(logikal.settings(), TokenShelf(engine), budget.holder("bank"), policy, clock=Clock())
    bank.tick()
    assert bank.held == 0
    assert sandbox.stats.logins == 0

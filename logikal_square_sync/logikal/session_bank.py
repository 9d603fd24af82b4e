"""The LogiKal session bank on a Dagster instance: its slots in the pool `logikal_sessions`.

The bank itself (`engine/client/session_bank.py`) keeps tokens logged in; here its budget
slots are claims of the Dagster pool `logikal_sessions` under the run id `lss-session-bank`
(the UI's pool page shows them), and a run's pool takes tokens through `BankedTokens`, which
frees the taken token's bank slot once the run holds a slot of its own.

One process keeps the bank (the `api` role, one replica): at its start it frees every
`lss-session-bank` claim and logs out the tokens a bank that died left on the shelf.
A shelf that no bank renews goes stale: runs never take a token older than
`renew_after_minutes`, and the first run that finds one gives its slot back.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.common.clock import Clock, utc_now
from logikal_square_sync.logikal.engine.client.session import ConnectionSettings, LogikalSession
from logikal_square_sync.logikal.engine.client.session_bank import (
    BankPolicy,
    SessionBank,
    TokenShelf,
)
from logikal_square_sync.logikal.session_budget import SESSIONS_POOL, DagsterSessionBudget
from logikal_square_sync.policies import policies

log = logging.getLogger(__name__)

BANK_RUN_ID = "lss-session-bank"


def bank_policy() -> BankPolicy:
    bank = policies().logikal.sessions.bank
    return BankPolicy(
        size=bank.size, renew_after=timedelta(minutes=bank.renew_after_minutes), keep_free=bank.keep_free
    )


class DagsterBankSlots:
    """The bank's claims in the pool `logikal_sessions`, and what everyone else holds there."""

    def __init__(self, instance: dg.DagsterInstance, limit: int) -> None:
        self.storage = instance.event_log_storage
        # A step key of this process's own: claims never collide with a dead bank's.
        self._budget = DagsterSessionBudget(instance, BANK_RUN_ID, f"bank-{uuid.uuid4().hex[:8]}", limit)

    @property
    def limit(self) -> int:
        return self._budget.limit

    def try_claim(self) -> str | None:
        return self._budget.try_claim()

    def free(self, claim: str) -> None:
        self._budget.free(claim)

    def held_by_others(self) -> int:
        info = self.storage.get_concurrency_info(SESSIONS_POOL)
        return sum(1 for slot in info.claimed_slots if slot.run_id != BANK_RUN_ID)


class BankedTokens:
    """A run's `TokenSource`: takes a fresh token off the shelf and frees the bank's slot for it."""

    def __init__(
        self,
        engine: sa.Engine,
        instance: dg.DagsterInstance,
        renew_after: timedelta,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.shelf = TokenShelf(engine)
        self.storage = instance.event_log_storage
        self.renew_after = renew_after
        self.clock = clock

    def take(self) -> str | None:
        try:
            self._drop_stale()
            banked = self.shelf.take(logged_in_after=self.clock() - self.renew_after)
            if banked is None:
                return None
            # The run holds a slot of its own for this session already (claimed before the take).
            self.storage.free_concurrency_slot_for_step(BANK_RUN_ID, banked.slot)
            return banked.token
        except Exception as error:  # noqa: BLE001 - no banked token: the session logs in
            log.warning(f"LogiKal session bank: no token taken: {error}")
            return None

    def _drop_stale(self) -> None:
        """Tokens no bank renewed for two renewal periods: its process is gone; free their slots."""
        stale_before = self.clock() - 2 * self.renew_after
        for banked in self.shelf.entries():
            if banked.logged_in_at < stale_before and self.shelf.remove(banked):
                self.storage.free_concurrency_slot_for_step(BANK_RUN_ID, banked.slot)


def clear_dead_bank(engine: sa.Engine, instance: dg.DagsterInstance, settings: ConnectionSettings) -> None:
    """What a bank that died left: its slots freed, its tokens logged out."""
    shelf = TokenShelf(engine)
    for banked in shelf.entries():
        if shelf.remove(banked):
            session = LogikalSession(settings)
            session.adopt(banked.token)
            session.logout()
    instance.event_log_storage.free_concurrency_slots_for_run(BANK_RUN_ID)


class BankKeeper:
    """The bank's loop in a daemon thread: a tick every `tick_seconds` until `stop`."""

    def __init__(self, settings: ConnectionSettings, engine: sa.Engine, instance: dg.DagsterInstance) -> None:
        sessions = policies().logikal.sessions
        # What a bank that died left is cleared by the first tick that reaches the warehouse:
        # an unreachable warehouse must not keep the API from starting.
        self._clear_dead_bank: Callable[[], None] | None = lambda: clear_dead_bank(engine, instance, settings)
        self.bank = SessionBank(
            settings, TokenShelf(engine), DagsterBankSlots(instance, sessions.budget), bank_policy()
        )
        self.tick_seconds = sessions.bank.tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="logikal-session-bank", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._clear_dead_bank is not None:
                    self._clear_dead_bank()
                    self._clear_dead_bank = None
                self.bank.tick()
            except Exception as error:  # noqa: BLE001 - the next tick tries again; runs log in meanwhile
                log.warning(f"LogiKal session bank: tick failed: {error}")
            self._stop.wait(self.tick_seconds)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.bank.close()

"""A small bank of logged-in LogiKal sessions, kept warm so a force sync starts without a login.

A login costs 4.5-9 s (docs/logikal-api.md §4), the largest share of a small project's
walk. A session is a bearer token plus a server-side cursor, and a token logged in by one
process works in another: so a long-running process (the `api` role) keeps a few tokens
logged in at the root, and a run's pool takes one instead of logging in.

The tokens wait in the warehouse's `sync_state` (stream `logikal/session_bank/<slot>`,
the token as watermark, `updated_at` its login time): runs and the bank both reach it.
Taking a token deletes its row, and only the taker whose DELETE removed the row has it,
so no two runs ever use one token. A taken token is the run's: it moves the cursor and
logs the token out at the end, like any session of its pool. The bank logs in another.

Every banked token holds a slot of the session budget, claimed by the bank before its
login. A run claims a slot of its own before it takes a token (as before a login) and
then frees the token's bank slot, so the budget counts the session once or, for a
moment, twice, never less. The bank holds tokens only while `keep_free` slots stay free
for the runs besides its own; when runs claim those, it logs tokens out until they are
free again, so a scheduled run waits for a slot at most one bank tick.

Tokens are renewed `renew_after` after their login (the token lifetime is undocumented);
a run never takes an older one. A token that is refused all the same (the server
restarted) answers 401, and the session logs in again and carries on (`session.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from logikal_square_sync.common.clock import Clock, utc_now
from logikal_square_sync.logikal.engine.client.session import ClientStats, ConnectionSettings, LogikalSession
from logikal_square_sync.warehouse.tables import sync_state

log = logging.getLogger(__name__)

STREAM_PREFIX = "logikal/session_bank/"


@dataclass(frozen=True)
class BankedToken:
    slot: str  # the bank's budget claim this token holds
    token: str
    logged_in_at: datetime


class TokenShelf:
    """The banked tokens in the warehouse: put by the bank, taken by runs, at most once each."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def put(self, banked: BankedToken) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(sync_state).values(
                    stream=STREAM_PREFIX + banked.slot, watermark=banked.token, updated_at=banked.logged_in_at
                )
            )

    def entries(self) -> list[BankedToken]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sync_state.c.stream, sync_state.c.watermark, sync_state.c.updated_at).where(
                    sync_state.c.stream.startswith(STREAM_PREFIX, autoescape=True)
                )
            ).all()
        return [
            BankedToken(row.stream.removeprefix(STREAM_PREFIX), row.watermark, row.updated_at)
            for row in rows
            if row.watermark
        ]

    def remove(self, banked: BankedToken) -> bool:
        """Delete this token's row; True only for the one caller whose DELETE removed it."""
        with self.engine.begin() as conn:
            deleted = conn.execute(
                sa.delete(sync_state).where(
                    sync_state.c.stream == STREAM_PREFIX + banked.slot,
                    sync_state.c.watermark == banked.token,
                )
            )
        return deleted.rowcount == 1

    def take(self, logged_in_after: datetime) -> BankedToken | None:
        """The newest token logged in after `logged_in_after`, now the caller's alone; None if none."""
        fresh = [banked for banked in self.entries() if banked.logged_in_at > logged_in_after]
        for banked in sorted(fresh, key=lambda b: b.logged_in_at, reverse=True):
            if self.remove(banked):
                return banked
        return None


class BankSlots(Protocol):
    """The session budget as the bank sees it: its own claims, and what the runs hold."""

    def try_claim(self) -> str | None: ...

    def free(self, claim: str) -> None: ...

    def held_by_others(self) -> int:
        """Slots claimed by anyone but the bank (the runs, the API's lookups)."""
        ...

    @property
    def limit(self) -> int: ...


@dataclass(frozen=True)
class BankPolicy:
    size: int  # tokens kept warm at most
    renew_after: timedelta  # a token older than this is logged out and replaced; runs never take it
    keep_free: int  # budget slots the bank always leaves free for runs


class SessionBank:
    """Keeps up to `policy.size` tokens logged in, within the budget; `tick` does one round."""

    def __init__(
        self,
        settings: ConnectionSettings,
        shelf: TokenShelf,
        slots: BankSlots,
        policy: BankPolicy,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.shelf = shelf
        self.slots = slots
        self.policy = policy
        self.clock = clock
        self.stats = ClientStats()
        self._held: dict[str, BankedToken] = {}  # slot -> the token on the shelf under it

    @property
    def held(self) -> int:
        return len(self._held)

    def target(self) -> int:
        """How many tokens the budget lets the bank hold now."""
        room = self.slots.limit - self.slots.held_by_others() - self.policy.keep_free
        return max(0, min(self.policy.size, room))

    def tick(self) -> None:
        self._forget_taken()
        now = self.clock()
        for banked in [b for b in self._held.values() if now - b.logged_in_at >= self.policy.renew_after]:
            self._give_back(banked)
        while self.held > self.target():
            oldest = min(self._held.values(), key=lambda b: b.logged_in_at)
            self._give_back(oldest)
        while self.held < self.target():
            if not self._bank_one():
                break

    def close(self) -> None:
        """Log out every token still on the shelf and free its slot."""
        self._forget_taken()
        for banked in list(self._held.values()):
            self._give_back(banked)

    def _forget_taken(self) -> None:
        on_shelf = {banked.slot for banked in self.shelf.entries()}
        for slot in [slot for slot in self._held if slot not in on_shelf]:
            # A run took it and freed the slot; freeing again covers a taker that died in between.
            del self._held[slot]
            self.slots.free(slot)

    def _give_back(self, banked: BankedToken) -> None:
        del self._held[banked.slot]
        if self.shelf.remove(banked):
            session = LogikalSession(self.settings, self.stats)
            session.adopt(banked.token)
            session.logout()
        # Removed by us or taken by a run meanwhile: either way the bank's slot is free now.
        self.slots.free(banked.slot)

    def _bank_one(self) -> bool:
        slot = self.slots.try_claim()
        if slot is None:
            return False
        session = LogikalSession(self.settings, self.stats)
        try:
            session.login()
            token = session.hand_over()
        except Exception as error:  # noqa: BLE001 - the bank is an optimisation: runs log in themselves
            log.warning(f"LogiKal session bank: a login failed: {error}")
            session.logout()
            self.slots.free(slot)
            return False
        banked = BankedToken(slot, token, self.clock())
        try:
            self.shelf.put(banked)
        except Exception as error:  # noqa: BLE001 - as above
            log.warning(f"LogiKal session bank: cannot shelve a token: {error}")
            session.adopt(token)
            session.logout()
            self.slots.free(slot)
            return False
        self._held[slot] = banked
        return True

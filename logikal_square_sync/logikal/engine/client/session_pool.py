"""A small pool of logged-in LogiKal sessions, lent out by where they stand.

`acquire(target)` hands out the idle session that can reach the target with
the cheapest selects (often none: the session that listed phase 3 fetches phase
3's parts lists), opens a new one while the pool has room, and otherwise
replaces a session that is stuck deeper than the target (a new login is the
only way up). `prewarm` starts logins in the background when work is certain,
so they overlap the listing instead of following it; `availability` tells the
planner when each session the pool has or may open could start on a target.
`close` logs every session out, also after a failure.

Every session holds a slot of the `SessionBudget` from before its login until
after its logout (in Dagster: the pool `logikal_sessions`, shared by all runs,
`logikal/session_budget.py`). While the budget is used up, a pool that has room
waits for a slot or for one of its own sessions to come back, whichever comes first.

A session that cannot be made or whose login is refused fails the pool: retrying cannot
help (and repeated refused logins may lock the account), so every waiting `acquire`
raises that error with its cause, and each failed login gives its slot back at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import Enum
from typing import Protocol

from logikal_square_sync.logikal.engine.client.errors import (
    LogikalApiError,
    LogikalAuthError,
    LogikalError,
    LogikalSessionError,
)
from logikal_square_sync.logikal.engine.client.navigation import Cursor, State, Target, route
from logikal_square_sync.logikal.engine.client.planner import DEFAULT_COSTS, CostModel, Joiner
from logikal_square_sync.logikal.engine.client.session import ClientStats, ConnectionSettings, LogikalSession

log = logging.getLogger(__name__)


class SessionBudget(Protocol):
    """Slots for LogiKal sessions: claimed before a login, freed after the logout."""

    # Seconds a pool waits before it asks again for a slot that was taken.
    poll_seconds: float

    def try_claim(self) -> str | None:
        """A slot for one more session, or None if the budget is used up right now."""
        ...

    def free(self, claim: str) -> None: ...

    def free_all(self) -> None: ...


class TokenSource(Protocol):
    """Tokens logged in elsewhere and waiting at the root (`session_bank.py`)."""

    def take(self) -> str | None:
        """A token no one else will use, or None; never raises (a failure means: log in)."""
        ...


class UnlimitedBudget:
    """No cap: for code that runs outside Dagster (benchmarks, scripts); the pool size still caps."""

    poll_seconds = 0.05

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def try_claim(self) -> str | None:
        return f"session-{next(self._counter)}"

    def free(self, claim: str) -> None:
        pass

    def free_all(self) -> None:
        pass


class Siblings(Enum):
    """Whether POST /elevations/select works from elevation state (a server setting we learn)."""

    ALLOWED = "allowed"
    SUSPECT = "suspect"  # one refusal (405 or 409) seen; a select from phase state decides
    REFUSED = "refused"


class SessionPool:
    def __init__(
        self,
        settings: ConnectionSettings,
        size: int = 3,
        *,
        sibling_elevations: bool | None = None,
        costs: CostModel = DEFAULT_COSTS,
        budget: SessionBudget | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.settings = settings
        self.size = size
        self.costs = costs
        self.stats = ClientStats()
        self.budget: SessionBudget = budget if budget is not None else UnlimitedBudget()
        self.tokens = tokens
        self._claims: dict[int, str] = {}  # id(session) -> its budget slot
        self._configured = sibling_elevations
        self._siblings = Siblings.REFUSED if sibling_elevations is False else Siblings.ALLOWED
        self._probe: tuple[str, int] | None = None  # the suspect elevation and the status it got
        self._refusal_status: int | None = None
        self._refusal_since: datetime | None = None  # known from an earlier run
        # The status of a refusal this pool learned (to be kept for the next runs), if any.
        self.refusal_learned: int | None = None
        self._sibling_select_worked = False
        self._cond = threading.Condition()
        self._idle: list[LogikalSession] = []
        self._live = 0  # idle + lent + logging in
        self._warming: list[threading.Thread] = []
        self._warming_since: dict[threading.Thread, float] = {}  # monotonic start of each background login
        self._adopting = 0  # background sessions starting on a banked token, not yet idle or gone
        self._awaiting_adoption = 0  # acquire calls waiting for one of those
        self._closed = False
        # Why no session can be had (a client that cannot be built, a refused login): raised by acquire.
        self._failure: LogikalSessionError | LogikalAuthError | None = None

    # -- sibling elevation selects ---------------------------------------------

    @property
    def sibling_elevations(self) -> bool:
        return self._siblings is Siblings.ALLOWED

    def assume_siblings_refused(self, status: int, since: datetime) -> None:
        """An earlier run learned that the server refuses sibling selects: plan for it from the start.

        A resource setting (`sibling_elevation_select`) overrides what was learned.
        """
        with self._cond:
            if self._configured is None and self._siblings is Siblings.ALLOWED:
                self._siblings, self._refusal_status, self._refusal_since = Siblings.REFUSED, status, since

    def suspect_sibling_refusal(self, elevation_id: str, status: int) -> None:
        """A select from a sibling's elevation state answered 405 or 409.

        Either means "siblings refused", but a 409 may also mean that elevation
        is locked; the same elevation selected from phase state tells.
        """
        with self._cond:
            if self._siblings is Siblings.ALLOWED:
                self._siblings, self._probe = Siblings.SUSPECT, (elevation_id, status)

    def settle_siblings(self, elevation_id: str, *, selectable_from_phase: bool) -> None:
        """The suspect elevation was then selected from phase state: if that worked, siblings are refused.

        If phase state was refused too (409: locked), a 409 from the sibling is
        explained by the lock; a 405 is not (a lock answers 409), so it stays a refusal.
        """
        with self._cond:
            probe = self._probe
            if self._siblings is not Siblings.SUSPECT or probe is None or elevation_id != probe[0]:
                return
            status = probe[1]
            refused = selectable_from_phase or status == 405
            self._siblings = Siblings.REFUSED if refused else Siblings.ALLOWED
            self._probe = None
            if refused:
                self._refusal_status = self.refusal_learned = status
        if refused:
            log.warning(
                f"LogiKal refuses selecting an elevation from a sibling's elevation state (it answers "
                f"{status}): falling back to one login per parts list"
            )

    def note_sibling_select(self) -> None:
        """A select from a sibling's elevation state worked."""
        self._sibling_select_worked = True

    def describe_siblings(self) -> str:
        """What the pool knows about sibling elevation selects, for the materialization metadata."""
        with self._cond:
            state, status = self._siblings, self._refusal_status
            probe = self._probe
        if self._configured is False:
            return "refused (resource setting sibling_elevation_select: false): one session per parts list"
        if state is Siblings.REFUSED and self.refusal_learned is not None:
            return f"refused ({status}), learned in this run: one session per parts list"
        if state is Siblings.REFUSED and self._refusal_since is not None:
            return (
                f"refused ({status}), known since {self._refusal_since:%Y-%m-%d %H:%M} UTC: "
                "one session per parts list"
            )
        if state is Siblings.SUSPECT and probe is not None:
            return f"refused ({probe[1]}) or the elevation locked: not settled, one session per parts list"
        return "allowed" if self._sibling_select_worked else "not tried"

    @property
    def siblings_refused(self) -> bool:
        return self._siblings is Siblings.REFUSED

    # -- lending ------------------------------------------------------------

    def _new_session(self) -> LogikalSession:
        try:
            return LogikalSession(self.settings, self.stats)
        except Exception as error:
            raise LogikalSessionError(
                f"cannot open a LogiKal session to {self.settings.base_url}: {type(error).__name__}: {error}"
            ) from error

    def _take_token(self) -> str | None:
        """A banked token for a session whose slot is claimed already (it counts there like a login)."""
        return self.tokens.take() if self.tokens is not None else None

    def _logged_in_session(self, token: str | None = None) -> LogikalSession:
        """A new session, logged in (or on `token`, or on a banked token if there is one); a failure
        that retrying cannot mend fails the whole pool."""
        session: LogikalSession | None = None
        try:
            session = self._new_session()
            token = token if token is not None else self._take_token()
            if token is not None:
                session.adopt(token)
            else:
                session.login()
        except BaseException as error:
            if session is not None:
                session.logout()  # closes its HTTP client
            if isinstance(error, LogikalSessionError | LogikalAuthError):
                with self._cond:
                    self._failure = self._failure or error
                    self._cond.notify_all()
            raise
        return session

    def _route_cost(self, session: LogikalSession, target: Target) -> float | None:
        steps = route(session.cursor, target, sibling_elevations=self.sibling_elevations)
        return None if steps is None else self.costs.route(steps)

    def prewarm(self, count: int, target: Target, *, logins_worth: int | None = None) -> None:
        """Log in up to `count` more sessions in the background and move them to `target`.

        A banked token costs no login, so every one up to `count` is taken; a session that needs a
        login starts only while fewer than `logins_worth` sessions were started (None: no limit).
        A login that does not pay costs more than its wait: the pool's close waits for it.
        """
        claims: list[tuple[str, str | None]] = []
        unused: str | None = None
        with self._cond:
            if self._failure is not None:
                return
            # Only the slots the budget has free now: a prewarm never waits. Each claim takes its
            # banked token at once: that frees the token's bank slot for the next claim.
            while len(claims) < self.size - self._live and len(claims) < count:
                claim = self.budget.try_claim()
                if claim is None:
                    break
                token = self._take_token()
                if token is None and logins_worth is not None and len(claims) >= logins_worth:
                    unused = claim
                    break
                claims.append((claim, token))
            self._live += len(claims)
            self._adopting += sum(1 for _claim, token in claims if token is not None)
        if unused is not None:
            self.budget.free(unused)
        for claim, token in claims:
            thread = threading.Thread(
                target=self._warm, args=(target, claim, token), name="logikal-prewarm", daemon=True
            )
            self._warming.append(thread)
            # A session on a banked token needs no login: the planner sees it as logged in.
            self._warming_since[thread] = time.monotonic() - (self.costs.login if token else 0.0)
            thread.start()

    def _drop(self, claim: str | None) -> None:
        """A session is gone (logged out, or its login failed): give its slot back."""
        with self._cond:
            self._live -= 1
            self._cond.notify_all()
        if claim is not None:
            self.budget.free(claim)

    def _warm(self, target: Target, claim: str, token: str | None = None) -> None:
        try:
            self._warm_session(target, claim, token)
        finally:
            if token is not None:
                with self._cond:
                    self._adopting -= 1
                    self._cond.notify_all()

    def _warm_session(self, target: Target, claim: str, token: str | None) -> None:
        # Everything inside the try: a thread that died here would keep its slot and its count
        # in `_live` for ever, and acquire() would wait for a session that never comes.
        try:
            session = self._logged_in_session(token)
        except BaseException as error:  # noqa: BLE001 - acquire raises the pool's failure, or logs in itself
            log.warning(f"LogiKal: a background login failed: {error}")
            self._drop(claim)
            return
        try:
            session.goto(target, sibling_elevations=self.sibling_elevations)
        except Exception as error:  # noqa: BLE001 - the task that needs a session reports it
            log.warning(f"LogiKal: a background session could not reach {target}: {error}")
            # An error answer (a 404: the target is gone) leaves the cursor where it was, so the
            # session can still serve; after anything else its cursor is unknown: never lend it.
            if not isinstance(error, LogikalApiError) or not session.logged_in:
                session.logout()
                self._drop(claim)
                return
        except BaseException:
            session.logout()
            self._drop(claim)
            raise
        with self._cond:
            self._claims[id(session)] = claim
            self._idle.append(session)
            self._cond.notify_all()

    def acquire(self, target: Target) -> LogikalSession:
        """A logged-in session that can reach `target` with the fewest selects.

        The caller moves it there (`session.goto`), so the caller sees and
        handles what the selects answer (a 404: the target is gone). Blocks
        while every session is lent out or still logging in, and while the
        budget has no slot for a new one.
        """
        stale: LogikalSession | None = None
        session: LogikalSession | None
        claim: str | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the LogiKal session pool is closed")
                if self._failure is not None:
                    raise self._failure_error()
                reachable = [
                    (cost, s) for s in self._idle if (cost := self._route_cost(s, target)) is not None
                ]
                if reachable:
                    session = min(reachable, key=lambda pair: pair[0])[1]
                    self._idle.remove(session)
                    break
                if self._adopting > self._awaiting_adoption:
                    # A background session on a banked token is ready after a select or two, long
                    # before a login would be: wait for it rather than log in a session not needed.
                    self._awaiting_adoption += 1
                    try:
                        self._cond.wait()
                    finally:
                        self._awaiting_adoption -= 1
                    continue
                if self._live < self.size and (claim := self.budget.try_claim()) is not None:
                    self._live += 1
                    session = None
                    break
                if self._idle and not any(thread.is_alive() for thread in self._warming):
                    # All stuck deeper than the target: replace one with a new login (on its slot).
                    stale = self._idle.pop(0)
                    claim = self._claims.pop(id(stale), None)
                    session = None
                    break
                # Room in the pool but not in the budget: ask again soon (no wake-up comes
                # from the other runs); else wait for a session of our own.
                self._cond.wait(self.budget.poll_seconds if self._live < self.size else None)
        if stale is not None:
            # Out before the new login: the slot never stands for two sessions at once.
            stale.logout()
        if session is None:
            try:
                session = self._logged_in_session()
            except BaseException:
                self._drop(claim)
                raise
            with self._cond:
                if claim is not None:
                    self._claims[id(session)] = claim
        return session

    def _failure_error(self) -> LogikalError:
        """The pool's failure for one more caller: a new error of its kind, chained to the original
        (one exception object raised in several threads at once would share a traceback)."""
        failure = self._failure
        assert failure is not None
        error = type(failure)(str(failure))
        error.__cause__ = failure
        return error

    def release(self, session: LogikalSession) -> None:
        with self._cond:
            keep = session.logged_in and not self._closed
            if keep:
                self._idle.append(session)
                self._cond.notify_all()
                return
            claim = self._claims.pop(id(session), None)
            closed = self._closed
        if closed:
            session.logout()
        self._drop(claim)

    def availability(self, target: Target) -> list[Joiner]:
        """When each session that is not lent out could stand at `target`, seconds from now.

        Idle sessions that can reach it (their selects), background logins (what
        is left of a mean login, then the selects from the root), and, as joiners
        that log in first, idle sessions stuck elsewhere (a logout and a login)
        and the pool's free room (a login). The budget may still make a new
        login wait: other runs' claims are not known here.
        """
        costs, now = self.costs, time.monotonic()
        from_root = self.costs.route(route(Cursor(State.ROOT), target, sibling_elevations=True) or [])
        with self._cond:
            joiners = []
            for session in self._idle:
                cost = self._route_cost(session, target)
                if cost is None:
                    joiners.append(Joiner(costs.logout + costs.login + from_root, logged_in=False))
                else:
                    joiners.append(Joiner(cost))
            for thread in self._warming:
                if thread.is_alive():
                    waited = now - self._warming_since.get(thread, now)
                    joiners.append(Joiner(max(costs.login - waited, 0.0) + from_root))
            joiners += [Joiner(costs.login + from_root, logged_in=False)] * (self.size - self._live)
        return sorted(joiners, key=lambda joiner: joiner.delay)

    @property
    def ready_or_warming(self) -> int:
        """Sessions that a new worker could get without waiting for a login of its own."""
        with self._cond:
            return len(self._idle) + sum(1 for thread in self._warming if thread.is_alive())

    # -- shutdown -----------------------------------------------------------

    def close(self) -> None:
        """Log out every session, in parallel; waits for background logins to finish first."""
        for thread in self._warming:
            thread.join()
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            claims = [claim for s in idle if (claim := self._claims.pop(id(s), None)) is not None]
            self._live -= len(idle)
            self._cond.notify_all()
        if idle:
            with ThreadPoolExecutor(max_workers=len(idle), thread_name_prefix="logikal-logout") as executor:
                list(executor.map(LogikalSession.logout, idle))
        # After the logouts: the server has let go of these sessions.
        for claim in claims:
            self.budget.free(claim)

    def __enter__(self) -> SessionPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

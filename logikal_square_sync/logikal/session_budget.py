"""The LogiKal session budget: how many LogiKal logins may be open at once, across all runs.

LogiKal's session and licence limits are unknown (docs/logikal-api.md), and six
concurrent runs with a pool each could hold 18+ logins. So every session a
`SessionPool` opens first claims a slot of the Dagster pool `logikal_sessions`
(`SESSIONS_POOL`), through the instance's concurrency API: the same slots
Dagster's own pools use, shown in the UI (*Deployment → Concurrency*), and
freed by run monitoring (`free_slots_after_run_end_seconds`) when a run dies
with slots still claimed. The limit is `logikal.sessions.budget` of
policies.yaml; every run applies it to the instance before its first claim.

A pool slot is claimed per session, not per step (Dagster's `pool=` grants one
slot per step): a project run alone may use the whole budget, and a fleet of
runs shares it. Each session claims under a step key of its own
(`<step>[logikal-session-<n>]`), so freeing a session's slot never frees the
step's own pool slot (`logikal_parts_lists`, ...).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.policies import policies

SESSIONS_POOL = "logikal_sessions"
# pg_advisory_lock key under which claims of the pool are serialized (any fixed bigint).
_CLAIM_LOCK_KEY = 0x4C53535F53455353  # "LSS_SESS"
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout


class SessionClaimLockTimeout(RuntimeError):
    """Waited longer than `lock_timeouts.session_claim_seconds` for the lock that serializes claims."""


class DagsterSessionBudget:
    """Slots of the Dagster pool `logikal_sessions`, claimed for one step of one run.

    The engine's `SessionBudget` (engine/client/session_pool.py), backed by Dagster's concurrency slots.
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        step_key: str,
        limit: int,
        *,
        poll_seconds: float = 0.5,
        pool: str = SESSIONS_POOL,
        lock_timeout_seconds: float | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("the LogiKal session budget must be >= 1")
        self.storage = instance.event_log_storage
        if not self.storage.supports_global_concurrency_limits:
            raise RuntimeError(
                "the Dagster instance's storage has no concurrency slots: the LogiKal session budget "
                "needs them (run `dagster instance migrate`)"
            )
        self.run_id = run_id
        self.step_key = step_key
        self.limit = limit
        self.pool = pool
        self.poll_seconds = poll_seconds
        self.lock_timeout_seconds = (
            policies().lock_timeouts.session_claim_seconds
            if lock_timeout_seconds is None
            else lock_timeout_seconds
        )
        self._counter = itertools.count(1)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._claiming = threading.Lock()
        self._on_postgres = type(self.storage).__module__.startswith("dagster_postgres")
        self.apply_limit()

    def apply_limit(self) -> None:
        """Set the pool's slot count to the budget of policies.yaml (idempotent; a lowered budget
        takes effect as the sessions holding the surplus slots log out)."""
        if self.storage.get_concurrency_info(self.pool).slot_count != self.limit:
            self.storage.set_concurrency_slots(self.pool, self.limit)

    def try_claim(self) -> str | None:
        claim = f"{self.step_key}[logikal-session-{next(self._counter)}]"
        with self._claims_serialized():
            try:
                status = self.storage.claim_concurrency_slot(self.pool, self.run_id, claim)
            except BaseException:
                # The claim may have been written before the failure: leave no slot behind.
                with contextlib.suppress(Exception):
                    self.storage.free_concurrency_slot_for_step(self.run_id, claim)
                raise
        if status.is_claimed:
            with self._lock:
                self._held.add(claim)
            return claim
        # Not queued: the pool asks again when it still needs a session (one of its own may
        # come back first), so leave no pending claim behind.
        self.storage.free_concurrency_slot_for_step(self.run_id, claim)
        return None

    @contextlib.contextmanager
    def _claims_serialized(self) -> Iterator[None]:
        """One claim at a time across all processes, on PostgreSQL storage.

        dagster-postgres runs the storage in AUTOCOMMIT, so the `SELECT ... FOR UPDATE SKIP
        LOCKED` with which Dagster picks a free slot row holds no lock until its `UPDATE`, and
        that UPDATE does not check the row is still free: two processes claiming at the same
        moment can both be told CLAIMED for one slot (seen: 5 sessions on a budget of 4, with 6
        runs claiming per session). Steps claim rarely enough that Dagster's own pools seldom meet
        this; a claim per session does. A session-level advisory lock around the claim closes it;
        SQLite storage writes one transaction at a time anyway.

        The wait is bounded by PostgreSQL's own `lock_timeout` (which covers advisory locks and
        keeps the waiters in PostgreSQL's fair queue), set for this wait only: a claim holds
        the lock for milliseconds, so a long wait means a stuck holder, and failing with its
        name beats starving.
        """
        with self._claiming:
            if not self._on_postgres:
                yield
                return
            with self.storage.index_connection() as conn:  # type: ignore[attr-defined]
                self._take_claim_lock(conn)
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _CLAIM_LOCK_KEY})

    def _take_claim_lock(self, conn: sa.Connection) -> None:
        milliseconds = max(1, round(self.lock_timeout_seconds * 1000))
        # A session setting (the storage connection runs in AUTOCOMMIT, where SET LOCAL is void),
        # reset at once: the connection may go back to Dagster's pool.
        conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{milliseconds}ms"})
        try:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _CLAIM_LOCK_KEY})
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "pgcode", None) != _LOCK_NOT_AVAILABLE:
                raise
            raise SessionClaimLockTimeout(
                f"waited {self.lock_timeout_seconds:g} s (policies.yaml lock_timeouts.session_claim_seconds) "
                f"for the PostgreSQL advisory lock {_CLAIM_LOCK_KEY} that serializes claims of the Dagster "
                f"pool {self.pool!r}; it is held by {_holder(conn)}. A claim holds it for milliseconds: "
                "that connection is stuck (end it with pg_terminate_backend if its process is gone)"
            ) from error
        finally:
            conn.execute(sa.text("RESET lock_timeout"))

    def free(self, claim: str) -> None:
        with self._lock:
            self._held.discard(claim)
        self.storage.free_concurrency_slot_for_step(self.run_id, claim)

    def free_all(self) -> None:
        with self._lock:
            held, self._held = self._held, set()
        for claim in held:
            self.storage.free_concurrency_slot_for_step(self.run_id, claim)


def _holder(conn: sa.Connection) -> str:
    """Who holds the claim lock, from pg_locks: what an operator needs to find the stuck connection."""
    row = conn.execute(
        sa.text(
            "SELECT a.pid, a.application_name, a.client_addr, a.state, a.state_change "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid::bigint = :high AND l.objid::bigint = :low AND l.objsubid = 1"
        ),
        {"high": _CLAIM_LOCK_KEY >> 32, "low": _CLAIM_LOCK_KEY & 0xFFFFFFFF},
    ).first()
    if row is None:
        return "a connection that has let go of it since"
    application = f" ({row.application_name})" if row.application_name else ""
    return (
        f"PostgreSQL backend pid {row.pid}{application} from {row.client_addr or 'a local socket'}, "
        f"{row.state} since {row.state_change:%Y-%m-%d %H:%M:%S %Z}"
    )

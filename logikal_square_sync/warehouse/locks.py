"""Bounded lock waits in the warehouse: a statement that waits too long for a lock fails, naming it.

A warehouse write waits for the row or table locks another transaction holds (an
ERP report, a migration, a session left idle in a transaction). Unbounded, such a
wait holds the run, its pool slot and its own locks until max runtime. PostgreSQL's
`lock_timeout` and SQLite's `busy_timeout` bound it (policies.yaml
`lock_timeouts.warehouse_seconds`); the error they raise says only "lock timeout" /
"database is locked", so `bound_lock_waits` turns it into a `WarehouseLockTimeout`
that names the bound, what waited and where to look, chained to the original.
"""

from __future__ import annotations

import sqlalchemy as sa

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
POLICY_KEY = "policies.yaml lock_timeouts.warehouse_seconds"


class WarehouseLockTimeout(sa.exc.OperationalError):
    """A warehouse statement waited longer than `lock_timeouts.warehouse_seconds` for a lock.

    Still an `OperationalError` (what it replaces), so code that handles those handles it too.
    """

    lock_message: str = ""

    @classmethod
    def replacing(cls, error: sa.exc.StatementError, message: str) -> WarehouseLockTimeout:
        assert error.orig is not None
        # Parameters hidden: rows of a bulk write are data, not a diagnosis.
        timeout = cls(error.statement, error.params, error.orig, hide_parameters=True)
        timeout.lock_message = message
        return timeout

    def __str__(self) -> str:
        return self.lock_message

    def __reduce__(self):  # keeps the message through pickling (Dagster's process boundaries)
        cls, args, state = super().__reduce__()
        return cls, args, {**state, "lock_message": self.lock_message}


def sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of a driver's error: psycopg 3 (the warehouse) names it `sqlstate`, psycopg2 `pgcode`."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


def connect_options(seconds: float) -> str:
    """The libpq `options` that bound every lock wait of a PostgreSQL connection."""
    return f"-c lock_timeout={_milliseconds(seconds)}"


def busy_timeout_pragma(seconds: float) -> str:
    """SQLite's equivalent: how long a writer waits for another writer's transaction to end."""
    return f"PRAGMA busy_timeout={_milliseconds(seconds)}"


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def bound_lock_waits(engine: sa.Engine, seconds: float) -> None:
    """Turns this engine's lock timeouts into `WarehouseLockTimeout` (the caller sets the bound itself)."""

    @sa.event.listens_for(engine, "handle_error")
    def _name_the_lock(context: sa.engine.ExceptionContext) -> None:
        original, wrapped = context.original_exception, context.sqlalchemy_exception
        if not isinstance(wrapped, sa.exc.StatementError):
            return
        where = _where(context.statement)
        if sqlstate(original) == _LOCK_NOT_AVAILABLE:
            detail = getattr(getattr(original, "diag", None), "context", None) or "a lock"
            raise WarehouseLockTimeout.replacing(
                wrapped,
                f"the warehouse (PostgreSQL {engine.url.host}/{engine.url.database}) waited {seconds:g} s "
                f"({POLICY_KEY}) for a lock another transaction holds, {detail.strip()}, {where}: "
                "find the holder in pg_stat_activity (pg_blocking_pids) - often a session idle in "
                "transaction or a migration",
            ) from wrapped
        if engine.dialect.name == "sqlite" and "database is locked" in str(original):
            raise WarehouseLockTimeout.replacing(
                wrapped,
                f"the warehouse (SQLite file {engine.url.database}) stayed busy for {seconds:g} s "
                f"({POLICY_KEY}): another process held its write transaction all that time, {where}",
            ) from wrapped


def _where(statement: str | None) -> str:
    """The statement's first words: enough to tell which write waited, never its parameters."""
    if not statement:
        return "on connect"
    words = " ".join(statement.split()[:4])
    return f"in `{words} ...`"

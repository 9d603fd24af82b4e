"""Records the warehouse cannot take go to `rejected_records`; the rest of their page is written.

A page is written in one transaction with its watermark. If the database
refuses it for its data (a value too long or too large, a NUL in text:
SQLSTATE class 22, or `limits.ValueRejected` on SQLite), `write_quarantining`
finds the records it refused, puts them in `rejected_records` and writes the
others with the watermark, so one bad record never holds a source back.
The happy path costs nothing: the records are looked at only after a write
failed. First the column checks of `limits.py` name the culprits; if the
write still fails without them, each record is written alone in a
transaction that is rolled back, which names whatever the checks cannot
foresee. A later write of a quarantined record removes it (`release`).
Nothing here imports Dagster.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.records import json_text
from logikal_square_sync.warehouse.limits import ValueRejected, row_problem
from logikal_square_sync.warehouse.locks import sqlstate
from logikal_square_sync.warehouse.tables import rejected_records
from logikal_square_sync.warehouse.upsert import insert_for, key_filter

log = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")

# SQLSTATE: 22 data exception (too long, out of range, bad character); 23502 not null; 23514 check.
_DATA_STATES = ("22", "23502", "23514")
# What psycopg raises, before sending anything, for a NUL in a bound string (psycopg 3 says
# "bytes", psycopg2 "characters").
_NUL_MESSAGE = "cannot contain NUL (0x00) "
# SQLite's words for the constraints SQLSTATE 23502 and 23514 name on PostgreSQL.
_SQLITE_REFUSALS = ("NOT NULL constraint failed", "CHECK constraint failed")


@dataclass(frozen=True)
class Rejection:
    """One record the warehouse did not take: by source, object type and id, why, and what it was."""

    source: str
    object_type: str
    record_id: str
    reason: str
    raw_json: str


@dataclass
class Candidate(Generic[R]):
    """A record a sync is about to write: its identity, its rows (to check) and its JSON (if refused)."""

    object_type: str
    record_id: str
    record: R
    rows: Sequence[tuple[sa.Table, Mapping[str, Any]]]
    raw_json: Callable[[], str]


def refused_for_its_data(error: BaseException) -> bool:
    """Whether the database refused a write for the values in it (not a lost connection, a lock, a bug)."""
    if isinstance(error, ValueRejected):
        return True
    if isinstance(error, ValueError) and _NUL_MESSAGE in str(error):
        return True
    cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    code = sqlstate(cause)
    if isinstance(code, str):
        return code.startswith(_DATA_STATES)
    if isinstance(cause, sqlite3.IntegrityError):
        return str(cause).startswith(_SQLITE_REFUSALS)
    # psycopg 3 raises a DataError without SQLSTATE, psycopg2 a ValueError.
    return _NUL_MESSAGE in str(cause)


def _storable(text: str) -> str:
    # A NUL is often why a record is here, and PostgreSQL text cannot hold one either.
    return text.replace("\x00", "\\u0000")


def quarantine(conn: sa.Connection, rejections: Iterable[Rejection], now: datetime | None = None) -> None:
    """Records `rejections`, keeping an already quarantined record's `first_seen`."""
    rows = {
        (r.source, r.object_type, _storable(r.record_id)): {
            "source": r.source,
            "object_type": r.object_type,
            "id": _storable(r.record_id),
            "reason": _storable(r.reason),
            "raw_json": _storable(r.raw_json),
            "first_seen": now or utc_now(),
            "last_seen": now or utc_now(),
        }
        for r in rejections
    }
    if not rows:
        return
    stmt = insert_for(conn, rejected_records)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "object_type", "id"],
        set_={name: stmt.excluded[name] for name in ("reason", "raw_json", "last_seen")},
    )
    conn.execute(stmt, list(rows.values()))


def release(conn: sa.Connection, source: str, object_type: str, record_ids: Iterable[str]) -> None:
    """Removes these records from quarantine: the warehouse has taken them."""
    ids = sorted({_storable(record_id) for record_id in record_ids})
    if ids:
        c = rejected_records.c
        conn.execute(
            rejected_records.delete().where(
                c.source == source, c.object_type == object_type, key_filter(conn, c.id, ids)
            )
        )


def quarantined_ids(engine: sa.Engine, source: str) -> dict[str, set[str]]:
    """The ids in quarantine from `source`, by object type (read once per sync, so releasing costs nothing
    while the quarantine is empty)."""
    c = rejected_records.c
    with engine.connect() as conn:
        found: dict[str, set[str]] = {}
        for object_type, record_id in conn.execute(sa.select(c.object_type, c.id).where(c.source == source)):
            found.setdefault(object_type, set()).add(record_id)
    return found


def quarantined(engine: sa.Engine, source: str, object_types: Iterable[str]) -> list[sa.Row[Any]]:
    """The quarantined records of these types, oldest first."""
    c = rejected_records.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(c.object_type, c.id, c.reason, c.first_seen, c.last_seen)
                .where(c.source == source, c.object_type.in_(list(object_types)))
                .order_by(c.first_seen, c.object_type, c.id)
            )
        )


def _rejection(source: str, candidate: Candidate[Any], reason: str) -> Rejection:
    return Rejection(source, candidate.object_type, candidate.record_id, reason, candidate.raw_json())


def _screened(source: str, candidates: Sequence[Candidate[R]]) -> tuple[list[Candidate[R]], list[Rejection]]:
    kept, rejected = [], []
    for candidate in candidates:
        problem = next(
            (f"{table.name}: {p}" for table, row in candidate.rows if (p := row_problem(table, row))), None
        )
        if problem is None:
            kept.append(candidate)
        else:
            rejected.append(_rejection(source, candidate, problem))
    return kept, rejected


def _probed(
    engine: sa.Engine,
    source: str,
    candidates: Sequence[Candidate[R]],
    write: Callable[[sa.Connection, list[R]], object],
    error: BaseException,
) -> tuple[list[Candidate[R]], list[Rejection]]:
    """Each record written alone, rolled back: those the database refuses, with its own words."""
    kept, rejected = [], []
    for candidate in candidates:
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                write(conn, [candidate.record])
            except Exception as refusal:
                if not refused_for_its_data(refusal):
                    raise
                rejected.append(_rejection(source, candidate, str(refusal).splitlines()[0]))
            else:
                kept.append(candidate)
            finally:
                transaction.rollback()
    if len(candidates) > 1 and not kept:
        # Every record refused alone: the page, not a record, is the problem; quarantining all would hide it.
        raise error
    return kept, rejected


def write_quarantining(
    engine: sa.Engine,
    source: str,
    records: Sequence[R],
    write: Callable[[sa.Connection, list[R]], T],
    candidate: Callable[[R], Candidate[R]],
    *,
    released: Callable[[sa.Connection, list[R]], None] | None = None,
    rejected: Sequence[Rejection] = (),
) -> tuple[T, list[Rejection]]:
    """`write(conn, records)` in one transaction; if the database refuses records in it, again without them.

    Returns what `write` returned and the rejections, already in
    `rejected_records` in the same transaction as the rest of the page;
    `rejected` are records refused before (they failed validation), put
    there with them.
    `candidate(record)` names a record and gives its rows and JSON; it is
    called only after a refusal. `released(conn, written)` runs in the
    transaction that wrote the page, to take written records out of
    quarantine. `write` must leave no trace outside its transaction: it may
    run more than once. Errors that are not about the data (a lost
    connection, a lock timeout) propagate as they are.
    """
    try:
        with engine.begin() as conn:
            result = write(conn, list(records))
            quarantine(conn, rejected)
            if released is not None:
                released(conn, list(records))
            return result, list(rejected)
    except Exception as error:
        if not refused_for_its_data(error):
            raise
        first_error = error
    kept, refused = _screened(source, [candidate(record) for record in records])
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                result = write(conn, [c.record for c in kept])
                quarantine(conn, [*rejected, *refused])
                if released is not None:
                    released(conn, [c.record for c in kept])
        except Exception as error:
            if attempt or not refused_for_its_data(error):
                raise
            kept, more = _probed(engine, source, kept, write, first_error)
            refused += more
            continue
        for rejection in refused:
            log.warning(
                "%s %s %r quarantined in rejected_records: %s",
                rejection.source,
                rejection.object_type,
                rejection.record_id,
                rejection.reason,
            )
        return result, [*rejected, *refused]
    raise AssertionError("unreachable")  # the loop returns or raises


def screen_rows(
    table: sa.Table, rows: Sequence[Mapping[str, Any]], source: str, object_type: str
) -> tuple[list[Mapping[str, Any]], list[Rejection]]:
    """`rows` split into those `table` can hold and rejections for the others, checked before writing.

    For sources whose listings are small (LogiKal): checking every row costs
    little there, and a listing must stay whole for its deletions to be
    judged, so its refused rows are taken out before the write instead of
    after a failed one. The id is the row's primary key, joined by '/'.
    """
    kept: list[Mapping[str, Any]] = []
    refused: list[Rejection] = []
    keys = [column.name for column in table.primary_key.columns]
    for row in rows:
        problem = row_problem(table, row)
        if problem is None:
            kept.append(row)
        else:
            record_id = "/".join(str(row[key]) for key in keys)
            raw = json_text(dict(row))
            refused.append(Rejection(source, object_type, record_id, f"{table.name}: {problem}", raw))
    return kept, refused


def release_written(
    conn: sa.Connection, source: str, object_type: str, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Takes `rows` (just written to `table`) out of quarantine, if the source has anything there."""
    c = rejected_records.c
    held = conn.execute(
        sa.select(c.id).where(c.source == source, c.object_type == object_type).limit(1)
    ).first()
    if held is not None:
        keys = [column.name for column in table.primary_key.columns]
        release(conn, source, object_type, ["/".join(str(row[key]) for key in keys) for row in rows])

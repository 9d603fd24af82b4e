"""Dialect-aware bulk upsert (`INSERT … ON CONFLICT DO UPDATE`) for PostgreSQL and SQLite.

SQLAlchemy has the statement for each dialect but no portable one, nor a
"write only what changed" guard; both matter here: a re-run with no change at
the source must write no rows, and an older copy of a record must never
overwrite a newer one.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.warehouse.copy import copy_rows
from logikal_square_sync.warehouse.limits import enforce

# Bookkeeping columns that change on every write and so never count as a change.
_BOOKKEEPING = frozenset({"synced_at"})
# From this many rows on, PostgreSQL upserts go through COPY into a staging table.
COPY_THRESHOLD = 200


@dataclass
class UpsertResult:
    inserted_keys: tuple[tuple[Any, ...], ...] = ()
    updated_keys: tuple[tuple[Any, ...], ...] = ()

    @property
    def inserted(self) -> int:
        return len(self.inserted_keys)

    @property
    def updated(self) -> int:
        return len(self.updated_keys)

    @property
    def written_keys(self) -> tuple[tuple[Any, ...], ...]:
        return self.inserted_keys + self.updated_keys

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def insert_for(conn: sa.Connection, table: sa.Table):
    """The dialect's INSERT, the one with `on_conflict_*`."""
    # The dialect modules are imported here: the connection has loaded its own already, and
    # loading the PostgreSQL one (asyncpg's and psycopg's modules with it) at import costs every
    # process loading the code location ~0.1 s, a SQLite one included.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise NotImplementedError(f"bulk upsert supports PostgreSQL and SQLite, not {conn.dialect.name}")


def _newer(excluded, table: sa.Table, newer_by: Sequence[str]) -> sa.ColumnElement[bool]:
    """Lexicographic `(excluded.a, excluded.b, …) > (table.a, table.b, …)` with NULL lowest."""
    condition: sa.ColumnElement[bool] | None = None
    for column in reversed(newer_by):
        incoming, stored = excluded[column], table.c[column]
        greater = sa.or_(
            sa.and_(incoming.is_not(None), stored.is_(None)),
            incoming > stored,
        )
        if condition is None:
            condition = greater
        else:
            equal = sa.or_(sa.and_(incoming.is_(None), stored.is_(None)), incoming == stored)
            condition = sa.or_(greater, sa.and_(equal, condition))
    assert condition is not None
    return condition


def _staging_table(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.Table:
    """A session-private temp table shaped like `table`, holding just `rows`."""
    name = f"staging_{table.name}"
    conn.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "{name}" (LIKE "{table.name}" INCLUDING DEFAULTS)'
        " ON COMMIT DELETE ROWS"
    )
    # Rows of an earlier upsert in the same transaction would otherwise still be there.
    conn.exec_driver_sql(f'TRUNCATE "{name}"')
    copy_rows(conn, table, rows, into=name)
    return sa.Table(name, sa.MetaData(), *(sa.Column(c.name, c.type) for c in table.columns))


def pg_array(values: Iterable[Any], element_type: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    """`values` as one PostgreSQL array parameter, typed.

    psycopg 3 sends a list as one array value (binary, quoted by no one), which the
    planner sees as a known constant: `= ANY(…)` of a thousand keys is then an index
    lookup per key, also on a table that no ANALYZE has described since a bulk load.
    A text literal cast to an array is not folded at plan time, and such a table was
    scanned whole for it.
    """
    from sqlalchemy.dialects import postgresql  # loaded with the connection: see `insert_for`

    return sa.literal(list(values), postgresql.ARRAY(element_type))


def key_filter(
    conn: sa.Connection, column: sa.ColumnElement[Any], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as one array parameter (`= ANY(…)`, `pg_array`).

    An expanded IN list of a thousand bound parameters costs more to render
    and parse than the lookup itself; one array parameter does not.
    """
    if conn.dialect.name == "postgresql":
        return column == sa.any_(pg_array(values, column.type))
    return column.in_(values)


def existing_keys(
    conn: sa.Connection, table: sa.Table, keys: Sequence[tuple[Any, ...]]
) -> set[tuple[Any, ...]]:
    key_columns = list(table.primary_key.columns)
    if not keys:
        return set()
    if conn.dialect.name == "postgresql" and all(
        isinstance(column.type, sa.String | sa.Integer) for column in key_columns
    ):
        return _probed_keys(conn, key_columns, keys)
    if len(key_columns) == 1:
        clause = key_filter(conn, key_columns[0], [key[0] for key in keys])
    else:
        clause = sa.tuple_(*key_columns).in_(keys)
    return {tuple(row) for row in conn.execute(sa.select(*key_columns).where(clause))}


def _probed_keys(
    conn: sa.Connection, key_columns: list[sa.Column[Any]], keys: Sequence[tuple[Any, ...]]
) -> set[tuple[Any, ...]]:
    """Which of `keys` are stored, on PostgreSQL: one primary-key index probe per key.

    The keys travel as one array per key column (`pg_array`), unnested side
    by side (an expanded IN list of a thousand keys is thousands of bound
    parameters to render and parse). Each is looked up by a LATERAL subquery with LIMIT 1,
    which PostgreSQL cannot flatten into a join: as a join, on a table whose
    statistics still describe it before a bulk load (no ANALYZE has run
    since), it is planned as a hash of the whole table, so every page of a
    full sync read every row stored so far (50 ms a page at 90,000 counts,
    growing with the table). A probe costs the same at any table size.
    """
    names = [column.name for column in key_columns]
    arrays = [pg_array([key[i] for key in keys], column.type) for i, column in enumerate(key_columns)]
    incoming = sa.func.unnest(*arrays).table_valued(*names).render_derived(name="incoming")
    stored = (
        sa.select(*key_columns)
        .where(*(column == incoming.c[column.name] for column in key_columns))
        .limit(1)
        .lateral("stored")
    )
    query = sa.select(*stored.c).select_from(incoming.join(stored, sa.true()))
    return {tuple(row) for row in conn.execute(query)}


def row_keys(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Each row's primary key, as a tuple."""
    key_names = [column.name for column in table.primary_key.columns]
    if len(key_names) == 1:
        (name,) = key_names
        return [(row[name],) for row in rows]
    return list(map(operator.itemgetter(*key_names), rows))


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    newer_by: Sequence[str] = (),
    overwrite: bool = False,
) -> UpsertResult:
    """Insert `rows`, updating existing ones by primary key.

    An existing row is rewritten only when the incoming one differs from it
    (any non-bookkeeping column), or, with `newer_by`, only when the incoming
    one is strictly newer by those columns; `overwrite` rewrites every
    existing row regardless (a repair). The result counts inserted and
    updated rows and names the keys written, so callers can act on exactly
    the rows that changed (e.g. replace their children).
    """
    if not rows:
        return UpsertResult()
    if conn.dialect.name == "sqlite":
        enforce(table, rows)  # what PostgreSQL would refuse (`limits.py`)
    keys = row_keys(table, rows)
    if len(set(keys)) != len(keys):
        raise ValueError(f"upsert into {table.name}: the batch repeats a primary key")
    before = existing_keys(conn, table, keys)

    if conn.dialect.name == "postgresql" and len(rows) - len(before) >= COPY_THRESHOLD:
        # Rows with keys not yet stored cannot conflict (the asset's pool keeps other
        # writers out), so they go straight in by COPY; only the others need the guard.
        fresh = [row for row, key in zip(rows, keys, strict=True) if key not in before]
        insert_rows(conn, table, fresh)
        stored = [row for row, key in zip(rows, keys, strict=True) if key in before]
        updated = (
            _guarded_upsert(conn, table, stored, before, newer_by, overwrite).updated_keys if stored else ()
        )
        return UpsertResult(
            inserted_keys=tuple(key for key in keys if key not in before), updated_keys=updated
        )
    return _guarded_upsert(conn, table, rows, before, newer_by, overwrite)


def _guarded_upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    before: set[tuple[Any, ...]],
    newer_by: Sequence[str],
    overwrite: bool = False,
) -> UpsertResult:
    """INSERT … ON CONFLICT DO UPDATE WHERE <changed or newer>; `before` holds the keys already stored."""
    key_names = [column.name for column in table.primary_key.columns]
    columns = list(rows[0].keys())
    stmt = insert_for(conn, table)
    parameters: list[Mapping[str, Any]] | None = list(rows)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        staging = _staging_table(conn, table, rows)
        stmt = stmt.from_select(columns, sa.select(*(staging.c[name] for name in columns)))
        parameters = None
    updatable = [name for name in columns if name not in key_names]
    guard: sa.ColumnElement[bool] | None
    if overwrite:
        guard = None
    elif newer_by:
        guard = _newer(stmt.excluded, table, newer_by)
    else:
        compared = [name for name in updatable if name not in _BOOKKEEPING]
        guard = sa.or_(*(table.c[name].is_distinct_from(stmt.excluded[name]) for name in compared))
    if updatable:
        stmt = stmt.on_conflict_do_update(
            index_elements=key_names,
            set_={name: stmt.excluded[name] for name in updatable},
            where=guard,
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=key_names)
    stmt = stmt.returning(*(table.c[name] for name in key_names))
    written = tuple(tuple(row) for row in conn.execute(stmt, parameters))
    return UpsertResult(
        inserted_keys=tuple(key for key in written if key not in before),
        updated_keys=tuple(key for key in written if key in before),
    )


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain bulk insert of rows known to be new: COPY on PostgreSQL, executemany elsewhere."""
    if conn.dialect.name == "sqlite":
        enforce(table, rows)  # what PostgreSQL would refuse (`limits.py`)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        copy_rows(conn, table, rows)
    elif rows:
        conn.execute(table.insert(), list(rows))

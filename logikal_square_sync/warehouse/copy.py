"""PostgreSQL binary COPY for bulk writes, through psycopg 3.

COPY is several times faster than multi-row INSERT … VALUES for thousands of
rows, and SQLAlchemy has no API for it. The binary format spares both sides
the text: psycopg's C dumpers write each value in the column type's own wire
format (a timestamp is eight bytes, not 25 characters to format and parse),
and there is nothing to escape. Binary COPY carries no column types, so each
column's is named (`copy_types`) from the table's declared types: a value of
another type fails the write (a naive datetime for a UTC column, a number for
a text column) instead of being stored as something else.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.warehouse.limits import ValueRejected, row_problem
from logikal_square_sync.warehouse.types import ExactDecimal

# The PostgreSQL type (as psycopg names it) of each SQLAlchemy type the tables use, most specific
# first (BigInteger is an Integer, Float a Numeric). varchar(n) has text's wire format; the
# server still checks n.
_PG_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.Boolean, "bool"),
    (sa.BigInteger, "int8"),
    (sa.SmallInteger, "int2"),
    (sa.Integer, "int4"),
    (sa.Float, "float8"),
    (sa.Numeric, "numeric"),
    (sa.LargeBinary, "bytea"),
    (sa.String, "text"),
)


def _pg_type(column_type: sa.types.TypeEngine[Any]) -> str:
    """The PostgreSQL type of a warehouse column: its binary wire format."""
    if isinstance(column_type, ExactDecimal):
        return "numeric"
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.DateTime):
        return "timestamptz" if column_type.timezone else "timestamp"
    for declared, name in _PG_TYPES:
        if isinstance(column_type, declared):
            return name
    raise NotImplementedError(f"no binary COPY type for {column_type!r}")


@functools.cache
def copy_types(table: sa.Table, columns: tuple[str, ...]) -> list[str]:
    """The PostgreSQL types of `columns` of `table`, in order, for `Copy.set_types`."""
    return [_pg_type(table.c[column].type) for column in columns]


def copy_rows(
    conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, into: str | None = None
) -> None:
    """COPY `rows` into `table` (or a table of the same shape named `into`) in the current transaction."""
    columns = tuple(rows[0].keys())
    column_list = ", ".join(f'"{column}"' for column in columns)
    # Each row as a tuple in column order, taken out of its dict in C.
    values = map(itemgetter(*columns), rows) if len(columns) > 1 else ((row[columns[0]],) for row in rows)
    driver = conn.connection.driver_connection
    assert driver is not None, "COPY needs a live DBAPI connection"  # an open Connection always has one
    row: tuple[Any, ...] = ()
    with driver.cursor() as cursor:
        statement = f'COPY "{into or table.name}" ({column_list}) FROM STDIN (FORMAT BINARY)'
        try:
            with cursor.copy(statement) as copy:
                copy.set_types(copy_types(table, columns))
                write_row = copy.write_row
                for row in values:
                    write_row(row)
        except (TypeError, ValueError, OverflowError) as error:
            # A value psycopg could not encode as its column's type; the COPY was cancelled.
            raise _refusal(table, columns, row, error) from error


def _refusal(table: sa.Table, columns: tuple[str, ...], row: tuple[Any, ...], error: Exception) -> ValueError:
    """What a row psycopg could not encode is: data the column cannot hold (`ValueRejected`, which
    the quarantine takes), or a value of the wrong type for its column (a bug in the sync)."""
    values = dict(zip(columns, row, strict=False))
    problem = row_problem(table, values)
    if problem is not None:
        return ValueRejected(table.name, problem)
    for name, value in values.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            return ValueError(f"naive datetime {value!r} given for the UTC column {table.name}.{name}")
    return ValueError(f"COPY into {table.name}: a value is not of its column's type: {error}")

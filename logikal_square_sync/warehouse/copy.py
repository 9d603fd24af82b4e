"""PostgreSQL COPY for bulk writes.

COPY is several times faster than multi-row INSERT … VALUES for thousands of
rows, and SQLAlchemy has no API for it; psycopg2's `copy_expert` takes the
text format, which this module writes. Values are converted by column type,
one column at a time (a list comprehension per column, one scan for escapes
per text column) rather than value by value, because this runs for every
field of every row of a full sync. A naive datetime is refused here as the
UtcDateTime column type refuses it on the INSERT path.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

NULL = "\\N"
# Text-format COPY escapes (PostgreSQL docs, "COPY", File Formats).
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_NEEDS_ESCAPE = re.compile(r"[\\\n\r\t]")


def _texts(values: list[Any]) -> list[str]:
    strings = [None if value is None else str(value) for value in values]
    # One scan of the whole column: values that need an escape are rare (ids, names, SKUs).
    if _NEEDS_ESCAPE.search("".join([text for text in strings if text is not None])):
        return [NULL if text is None else text.translate(_ESCAPES) for text in strings]
    return [NULL if text is None else text for text in strings]


def _timestamps(values: list[datetime | None]) -> list[str]:
    texts = []
    last: datetime | None = None
    last_text = NULL
    for value in values:
        if value is not last:  # a page's rows share one synced_at: formatted once
            if value is None:
                last_text = NULL
            elif value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r} given for a UTC column")
            else:
                last_text = value.isoformat()
            last = value
        texts.append(last_text)
    return texts


def _booleans(values: list[bool | None]) -> list[str]:
    return [NULL if value is None else ("t" if value else "f") for value in values]


def _numbers(values: list[Any]) -> list[str]:
    return [NULL if value is None else str(value) for value in values]


def _binaries(values: list[bytes | None]) -> list[str]:
    return [NULL if value is None else "\\\\x" + bytes(value).hex() for value in values]


def _converter(column_type: sa.types.TypeEngine) -> Callable[[list[Any]], list[str]]:
    """How one column's values become COPY text, all of the column's values at once."""
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.DateTime):
        return _timestamps
    if isinstance(column_type, sa.Boolean):
        return _booleans
    if isinstance(column_type, sa.Integer | sa.Numeric):
        return _numbers
    if isinstance(column_type, sa.LargeBinary):
        return _binaries
    return _texts


def copy_text(table: sa.Table, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """`rows` in PostgreSQL's text COPY format, converted column by column."""
    converted = [_converter(table.c[column].type)([row[column] for row in rows]) for column in columns]
    return "\n".join(map("\t".join, zip(*converted, strict=True))) + "\n"


def copy_rows(
    conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, into: str | None = None
) -> None:
    """COPY `rows` into `table` (or a table of the same shape named `into`) in the current transaction."""
    columns = list(rows[0].keys())
    buffer = io.StringIO(copy_text(table, rows, columns))
    column_list = ", ".join(f'"{column}"' for column in columns)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None, "COPY needs a live DBAPI connection"  # an open Connection always has one
    cursor = dbapi.cursor()
    try:
        cursor.copy_expert(f'COPY "{into or table.name}" ({column_list}) FROM STDIN', buffer)
    finally:
        cursor.close()

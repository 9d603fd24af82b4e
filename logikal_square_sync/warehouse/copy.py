"""PostgreSQL COPY for bulk writes.

COPY is several times faster than multi-row INSERT … VALUES for thousands of
rows, and SQLAlchemy has no API for it; psycopg2's `copy_expert` takes the
text format, which this module writes. Values are converted by column type,
chosen once per column rather than per value, because this runs for every
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


def _text(value: Any) -> str:
    if value is None:
        return NULL
    text = str(value)
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def _timestamp(value: datetime | None) -> str:
    if value is None:
        return NULL
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given for a UTC column")
    return value.isoformat()


def _boolean(value: bool | None) -> str:
    return NULL if value is None else ("t" if value else "f")


def _number(value: Any) -> str:
    return NULL if value is None else str(value)


def _binary(value: bytes | None) -> str:
    return NULL if value is None else "\\\\x" + bytes(value).hex()


def _converter(column_type: sa.types.TypeEngine) -> Callable[[Any], str]:
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.DateTime):
        return _timestamp
    if isinstance(column_type, sa.Boolean):
        return _boolean
    if isinstance(column_type, sa.Integer | sa.Numeric):
        return _number
    if isinstance(column_type, sa.LargeBinary):
        return _binary
    return _text


def copy_rows(
    conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, into: str | None = None
) -> None:
    """COPY `rows` into `table` (or a table of the same shape named `into`) in the current transaction."""
    columns = list(rows[0].keys())
    converters = [(column, _converter(table.c[column].type)) for column in columns]
    buffer = io.StringIO()
    buffer.writelines(
        "\t".join([convert(row[column]) for column, convert in converters]) + "\n" for row in rows
    )
    buffer.seek(0)
    column_list = ", ".join(f'"{column}"' for column in columns)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None, "COPY needs a live DBAPI connection"  # an open Connection always has one
    cursor = dbapi.cursor()
    try:
        cursor.copy_expert(f'COPY "{into or table.name}" ({column_list}) FROM STDIN', buffer)
    finally:
        cursor.close()

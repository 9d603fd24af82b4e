"""Column types shared by the warehouse tables."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on PostgreSQL and SQLite alike.

    SQLite has no timezone type: SQLAlchemy stores naive text there and hands
    naive datetimes back. Normalising to UTC on the way in and tagging UTC on
    the way out keeps the contract ("all timestamps timezone-aware UTC") and
    keeps string comparison on SQLite in step with time order.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

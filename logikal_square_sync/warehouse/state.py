"""Watermarks in `sync_state`, written in the caller's transaction.

Callers pass the same connection they write the data with, so a watermark
commits together with the rows it covers and never runs ahead of them.
"""

from __future__ import annotations

import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.warehouse.limits import enforce
from logikal_square_sync.warehouse.tables import sync_state
from logikal_square_sync.warehouse.upsert import insert_for


def get_watermark(conn: sa.Connection, stream: str) -> str | None:
    return conn.execute(sa.select(sync_state.c.watermark).where(sync_state.c.stream == stream)).scalar()


def get_watermarks(conn: sa.Connection, prefix: str) -> dict[str, str | None]:
    rows = conn.execute(
        sa.select(sync_state.c.stream, sync_state.c.watermark).where(
            sync_state.c.stream.startswith(prefix, autoescape=True)
        )
    )
    return {stream: watermark for stream, watermark in rows}


def set_watermark(conn: sa.Connection, stream: str, watermark: str | None) -> None:
    set_watermarks(conn, {stream: watermark})


def set_watermarks(conn: sa.Connection, watermarks: dict[str, str | None]) -> None:
    now = utc_now()
    rows = [{"stream": stream, "watermark": mark, "updated_at": now} for stream, mark in watermarks.items()]
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        enforce(sync_state, rows)  # what PostgreSQL would refuse (`limits.py`)
    # One statement, no lookup first: a sync moves its watermark with every page it commits.
    stmt = insert_for(conn, sync_state)
    stmt = stmt.on_conflict_do_update(
        index_elements=["stream"],
        set_={"watermark": stmt.excluded.watermark, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt, rows)

"""Whether a catalog or inventory sync reads everything (a full refresh) or only what changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from logikal_square_sync.square.engine.store import read_watermarks


@dataclass(frozen=True)
class SyncStart:
    watermark: str | None
    full: bool

    @property
    def mode(self) -> str:
        return "full refresh" if self.full else "incremental"


def sync_start(
    engine: sa.Engine,
    *,
    watermark_key: str,
    last_full_refresh_key: str,
    full_refresh_days: int,
    run_started: datetime,
    full_refresh: bool,
) -> SyncStart:
    """Full when asked for, before the first watermark, or `full_refresh_days` after the last full one."""
    watermark, last_full = read_watermarks(engine, watermark_key, last_full_refresh_key)
    due = last_full is None or (
        run_started - datetime.fromisoformat(last_full) >= timedelta(days=full_refresh_days)
    )
    return SyncStart(watermark, full_refresh or watermark is None or due)

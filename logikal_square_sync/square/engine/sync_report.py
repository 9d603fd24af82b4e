"""What one Square sync did: counts, watermarks and timing (report_metadata.py shows it in Dagster)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logikal_square_sync.square.engine.client import SquareClient


@dataclass
class SyncReport:
    inserted: int = 0
    updated: int = 0
    tombstoned: int = 0
    child_rows_written: int = 0
    read: int = 0  # records the API returned, re-reads included
    pages: int = 0
    api_calls: int = 0
    retries: int = 0
    cursor_restarts: int = 0
    watermark_before: str | None = None
    watermark_after: str | None = None
    mode: str = "incremental"
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    duration_seconds: float = 0.0

    def finish(self, client: SquareClient) -> SyncReport:
        self.api_calls = client.stats.calls
        self.retries = client.stats.retries
        self.cursor_restarts = client.cursor_restarts
        self.duration_seconds = round(time.monotonic() - self.started, 3)
        return self

    def metadata(self) -> dict[str, Any]:
        """Plain values; the watermarks stay ISO strings (None before the first)."""
        return {
            "mode": self.mode,
            "rows_inserted": self.inserted,
            "rows_updated": self.updated,
            "rows_tombstoned": self.tombstoned,
            "child_rows_written": self.child_rows_written,
            "records_read": self.read,
            "pages": self.pages,
            "api_calls": self.api_calls,
            "retries": self.retries,
            "cursor_restarts": self.cursor_restarts,
            "watermark_before": self.watermark_before,
            "watermark_after": self.watermark_after,
            "duration_seconds": self.duration_seconds,
            **self.extra,
        }

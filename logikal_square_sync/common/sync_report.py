"""What one sync did, for every source: one report type, one set of metadata keys.

Each sync of each source returns (or carries, next to its own source-specific fields) a
`SyncReport`; `report_metadata.py` turns it into Dagster materialization metadata, so the
UI shows the same key for the same meaning in every source. Counts only the source has
(LogiKal's logins, Square's cursor restarts, locations at the source, ...) go in `extra`.
No Dagster here: the engines fill it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

FULL_REFRESH, INCREMENTAL = "full refresh", "incremental"


class ClientCounts(Protocol):
    """A source's API client (or pool of them) as a report sees it."""

    def report_counts(self) -> Mapping[str, int]:
        """`api_calls` and `retries` (every attempt counts as a call), plus the source's own counts."""
        ...


class RowChanges(Protocol):
    """What a warehouse write returns: rows inserted, updated and marked deleted."""

    @property
    def inserted(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def deleted(self) -> int: ...


@dataclass
class SyncReport:
    inserted: int = 0
    updated: int = 0
    # Rows the source no longer has, kept and marked (`deleted_at` / `is_deleted`): never removed.
    deleted: int = 0
    child_rows_written: int = 0  # rows written with their parent (line items, ...)
    rejected: int = 0  # records put in quarantine (`rejected_records`) instead of written
    read: int = 0  # records the API returned, re-reads included
    pages: int = 0  # API answers that carried records
    api_calls: int = 0
    retries: int = 0
    # ISO timestamps; None where the sync keeps no watermark (or before its first run).
    watermark_before: str | None = None
    watermark_after: str | None = None
    mode: str = INCREMENTAL
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    duration_seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def add_rows(self, changes: RowChanges) -> None:
        self.inserted += changes.inserted
        self.updated += changes.updated
        self.deleted += changes.deleted

    def finish(self, client: ClientCounts) -> SyncReport:
        """Takes the client's counts and stops the clock; returns the report."""
        counts = dict(client.report_counts())
        self.api_calls = counts.pop("api_calls")
        self.retries = counts.pop("retries")
        self.extra.update(counts)
        self.duration_seconds = round(time.monotonic() - self.started, 3)
        return self

    def metadata(self) -> dict[str, Any]:
        """Plain values, the same keys for every sync; the watermarks stay ISO strings (or None)."""
        return {
            "mode": self.mode,
            "rows_changed": self.changed,
            "rows_inserted": self.inserted,
            "rows_updated": self.updated,
            "rows_marked_deleted": self.deleted,
            "child_rows_written": self.child_rows_written,
            "records_rejected": self.rejected,
            "records_read": self.read,
            "pages": self.pages,
            "api_calls": self.api_calls,
            "retries": self.retries,
            "watermark_before": self.watermark_before,
            "watermark_after": self.watermark_after,
            "duration_seconds": self.duration_seconds,
            **self.extra,
        }

"""A Square sync's report as Dagster materialization metadata (the engine's SyncReport knows no Dagster)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from logikal_square_sync.square.engine.sync_report import SyncReport


def report_metadata(report: SyncReport) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "rows_inserted": report.inserted,
        "rows_updated": report.updated,
        "rows_tombstoned": report.tombstoned,
        "child_rows_written": report.child_rows_written,
        "records_read": report.read,
        "pages": report.pages,
        "api_calls": report.api_calls,
        "retries": report.retries,
        "cursor_restarts": report.cursor_restarts,
        "watermark_before": _timestamp(report.watermark_before),
        "watermark_after": _timestamp(report.watermark_after),
        "duration_seconds": report.duration_seconds,
        **report.extra,
    }


def _timestamp(watermark: str | None) -> dg.MetadataValue:
    """A watermark as the UI's timestamp (shown in the viewer's zone), or "none" before the first."""
    if watermark is None:
        return dg.MetadataValue.text("none")
    return dg.MetadataValue.timestamp(datetime.fromisoformat(watermark))

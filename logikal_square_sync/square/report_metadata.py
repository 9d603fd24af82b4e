"""A Square sync's report as Dagster materialization metadata (the engine's SyncReport knows no Dagster)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from logikal_square_sync.square.engine.sync_report import SyncReport


def report_metadata(report: SyncReport) -> dict[str, Any]:
    metadata = report.metadata()
    for key in ("watermark_before", "watermark_after"):
        metadata[key] = _timestamp(metadata[key])
    return metadata


def _timestamp(watermark: str | None) -> dg.MetadataValue:
    """A watermark as the UI's timestamp (shown in the viewer's zone), or "none" before the first."""
    if watermark is None:
        return dg.MetadataValue.text("none")
    return dg.MetadataValue.timestamp(datetime.fromisoformat(watermark))

"""A sync's report as Dagster materialization metadata: one helper for every source.

The engines' `SyncReport` (`sync_report.py`) knows no Dagster; here its watermarks become
the UI's timestamps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from logikal_square_sync.sync_report import SyncReport


def report_metadata(report: SyncReport) -> dict[str, Any]:
    metadata = report.metadata()
    for key in ("watermark_before", "watermark_after"):
        metadata[key] = _timestamp(metadata[key])
    return metadata


def _timestamp(watermark: str | None) -> dg.MetadataValue:
    """A watermark as the UI's timestamp (shown in the viewer's zone), or "none" without one."""
    if watermark is None:
        return dg.MetadataValue.text("none")
    return dg.MetadataValue.timestamp(datetime.fromisoformat(watermark))

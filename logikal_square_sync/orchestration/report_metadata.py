"""A sync's report as Dagster materialization metadata: one helper for every source.

The engines' `SyncReport` (`sync_report.py`) knows no Dagster; here its watermarks become
the UI's timestamps, and the warehouse written is named (`warehouse`: kind, host, port and
database, never a user or password), so a materialization that landed elsewhere shows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.common.sync_report import SyncReport
from logikal_square_sync.warehouse.location import describe_warehouse


def report_metadata(report: SyncReport, warehouse: sa.Engine) -> dict[str, Any]:
    """Every materialization's metadata: the report's counts and the `warehouse` they went to."""
    metadata = report.metadata()
    for key in ("watermark_before", "watermark_after"):
        metadata[key] = _timestamp(metadata[key])
    metadata["warehouse"] = dg.MetadataValue.text(describe_warehouse(warehouse.url))
    return metadata


def _timestamp(watermark: str | None) -> dg.MetadataValue:
    """A watermark as the UI's timestamp (shown in the viewer's zone), or "none" without one."""
    if watermark is None:
        return dg.MetadataValue.text("none")
    return dg.MetadataValue.timestamp(datetime.fromisoformat(watermark))

"""What one walk of a project did, asset by asset: the result a project's contents sync returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from logikal_square_sync.common.sync_report import FULL_REFRESH, SyncReport

PHASES, ELEVATIONS, PARTS_LISTS = "phases", "elevations", "parts_lists"
EVERYTHING = frozenset({PHASES, ELEVATIONS, PARTS_LISTS})


def _listed_in_full() -> SyncReport:
    return SyncReport(mode=FULL_REFRESH)


@dataclass
class ProjectContentsResult:
    """One walk's result: a report per asset (the walk's API counts and duration in each), and more."""

    project_id: str
    project_name: str
    # Every sync lists all of the project's phases and elevations; parts lists only when changed.
    phases: SyncReport = field(default_factory=_listed_in_full)
    elevations: SyncReport = field(default_factory=_listed_in_full)
    parts_lists: SyncReport = field(default_factory=SyncReport)
    parts_lists_fetched: int = 0
    parts_lists_skipped: int = 0
    parts_lists_failed: int = 0
    parse_status: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # Set when the project is (or, during this run, was) marked deleted in the warehouse.
    deleted_at: datetime | None = None
    # The project's directory no longer lists it (confirmed): deleted or moved at the source.
    gone_at_source: bool = False
    sibling_elevation_select: str = ""
    client: dict[str, Any] = field(default_factory=dict)  # the pool's own counters (diagnostics)

    @property
    def reports(self) -> dict[str, SyncReport]:
        return {PHASES: self.phases, ELEVATIONS: self.elevations, PARTS_LISTS: self.parts_lists}

    @property
    def not_synced_because(self) -> str | None:
        """Why the project's contents were not (all) synced, or None when they were."""
        if self.deleted_at is not None:
            return (
                f"LogiKal project {self.project_name!r} ({self.project_id}) was deleted at the source "
                f"(noticed {self.deleted_at:%Y-%m-%d %H:%M} UTC): nothing synced, its rows stay in the "
                "warehouse with deleted_at"
            )
        if self.gone_at_source:
            return (
                f"LogiKal project {self.project_name!r} ({self.project_id}) is no longer in its directory: "
                "deleted or moved at the source; nothing synced, and the next logikal/projects run records "
                "which"
            )
        return None

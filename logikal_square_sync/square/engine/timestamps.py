"""RFC 3339 timestamps as Square takes them."""

from __future__ import annotations

from datetime import UTC, datetime


def format_timestamp(moment: datetime) -> str:
    """Milliseconds, UTC, `Z` suffix: Square's own format, and ordered as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

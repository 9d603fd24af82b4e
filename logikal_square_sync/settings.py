"""Process-wide switches read from the environment (none of them secret)."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

_FALSE = {"0", "false", "no", "off"}


def background_sync_enabled() -> bool:
    """The master switch: false starts every schedule and sensor STOPPED; manual runs still work."""
    return os.environ.get("BACKGROUND_SYNC_ENABLED", "true").strip().lower() not in _FALSE


def default_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if background_sync_enabled() else dg.DefaultScheduleStatus.STOPPED


def default_sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if background_sync_enabled() else dg.DefaultSensorStatus.STOPPED


def sync_timezone() -> str:
    """The IANA name in SYNC_TIMEZONE (default UTC); an unknown name fails naming the variable."""
    name = os.environ.get("SYNC_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"SYNC_TIMEZONE={name!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin)"
        ) from None
    return name


def sync_zone() -> ZoneInfo:
    """SYNC_TIMEZONE as a time zone: where schedules fire and where an order's day begins."""
    return ZoneInfo(sync_timezone())

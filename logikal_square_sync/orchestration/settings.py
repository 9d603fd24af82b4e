"""Process-wide switches read from the environment (none of them secret)."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

BACKGROUND_SYNC_ENABLED = "BACKGROUND_SYNC_ENABLED"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def background_sync_enabled() -> bool:
    """The master switch (default true); any value but the accepted ones fails naming the variable.

    False starts every syncing schedule and sensor STOPPED and makes each tick of one started
    anyway skip (`background_switch.py`); manual runs still work. A typo must not mean "on".
    """
    value = os.environ.get("BACKGROUND_SYNC_ENABLED", "").strip().lower() or "true"
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    accepted = ", ".join(f"{yes}/{no}" for yes, no in zip(_TRUE, _FALSE, strict=True))
    raise ValueError(
        f"{BACKGROUND_SYNC_ENABLED}={os.environ[BACKGROUND_SYNC_ENABLED]!r} is not a switch value: "
        f"use one of {accepted} (any case; empty means true)"
    )


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

"""Process-wide switches read from the environment (none of them secret)."""

from __future__ import annotations

import os

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
    return os.environ.get("SYNC_TIMEZONE", "UTC")

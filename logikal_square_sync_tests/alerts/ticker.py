"""Ticks of `alert_on_run_failure` the way the daemon makes them, for the alert tests."""

from __future__ import annotations

import json
import time

import dagster as dg

from logikal_square_sync.alerts.resource import AlertsResource
from logikal_square_sync.alerts.run_sensor import alert_on_run_failure
from logikal_square_sync.warehouse.resource import WarehouseResource


class Ticker:
    """Sensor ticks carrying the cursor: it is kept only from a tick that returned."""

    def __init__(self, instance: dg.DagsterInstance, alerts: AlertsResource, warehouse: WarehouseResource):
        self.instance, self.alerts, self.warehouse = instance, alerts, warehouse
        self.cursor: str | None = None
        self.seconds: list[float] = []

    def tick(self) -> str:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"alerts": self.alerts, "warehouse": self.warehouse},
        )
        started = time.monotonic()
        data = alert_on_run_failure.evaluate_tick(context)
        self.seconds.append(time.monotonic() - started)
        self.cursor = data.cursor
        return data.skip_message or ""

    def until_sent(self, channel: str, most: int = 10) -> list[str]:
        """Ticks until nothing waits for `channel` (a busy machine may need more than one tick's
        deadline for a few deliveries); the tick messages."""
        messages: list[str] = []
        while channel in self.waiting():
            assert len(messages) < most, (messages, self.waiting())
            messages.append(self.tick())
        return messages

    def waiting(self) -> dict[str, list[str]]:
        """Channel -> titles of the alerts waiting for it in the outbox, oldest first."""
        pending = json.loads(self.cursor or "{}").get("outbox", {}).get("pending", [])
        channels: dict[str, list[str]] = {}
        for item in pending:
            for channel in item["channels"]:
                channels.setdefault(channel, []).append(item["title"])
        return channels

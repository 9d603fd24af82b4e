"""The alert sensors' cursors: JSON holding what a sensor has seen and the outbox of its alerts.

A cursor that cannot be read starts afresh instead of failing every tick: at worst one alert
repeats (a failure episode's, a stale asset's), never a crash loop.
"""

from __future__ import annotations

import json
from typing import Any, Self

from logikal_square_sync.alerts.outbox import Outbox


class SensorCursor:
    """A sensor's cursor: its own content (`to_json`, `from_json`) and the outbox beside it."""

    outbox: Outbox

    @classmethod
    def parse(cls, raw: str | None) -> Self:
        if not raw:
            return cls()
        try:
            data: dict[str, Any] = json.loads(raw)
            return cls.from_json(data, Outbox.parse(data.get("outbox")))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps({**self.to_json(), "outbox": self.outbox.dump()}, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any], outbox: Outbox) -> Self:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

"""A stand-in for a dead-man's-switch monitor's push endpoint (healthchecks.io, Uptime Kuma)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request

from logikal_square_sync_tests.alerts.endpoints import recording_app

HEARTBEAT_PATH = "/ping/6b0e7c5e-hb-secret-4711"


@dataclass
class HeartbeatMonitor:
    """The monitor as the tests see it: it counts pings."""

    url: str
    pings: list[str] = field(default_factory=list)  # the User-Agent of each ping

    @property
    def ping_url(self) -> str:
        return self.url + HEARTBEAT_PATH

    @property
    def broken_url(self) -> str:
        return self.url + "/ping/broken"


def heartbeat_app(pings: list[str]) -> Starlette:
    """The push endpoint, appending each ping's User-Agent to `pings`, and a broken one beside it."""

    async def record(request: Request) -> None:
        pings.append(request.headers.get("user-agent", ""))

    return recording_app("GET", HEARTBEAT_PATH, record, "OK", "/ping/broken/{secret}", (500, "server error"))

"""A stand-in for a dead-man's-switch monitor's push endpoint (healthchecks.io, Uptime Kuma)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

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

    async def ping(request: Request) -> PlainTextResponse:
        pings.append(request.headers.get("user-agent", ""))
        return PlainTextResponse("OK")

    async def broken(request: Request) -> PlainTextResponse:
        return PlainTextResponse("server error", status_code=500)

    return Starlette(
        routes=[
            Route(HEARTBEAT_PATH, ping, methods=["GET"]),
            Route("/ping/broken/{secret}", broken, methods=["GET"]),
        ]
    )

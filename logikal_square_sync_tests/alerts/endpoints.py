"""The shape of every HTTP stand-in of an alert channel: an endpoint that records, one that fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def recording_app(
    method: str,
    path: str,
    record: Callable[[Request], Awaitable[None]],
    reply: str,
    failing_path: str,
    failure: tuple[int, str],
) -> Starlette:
    """Answers `reply` to `method` at `path` once `record` has the request; at `failing_path` it
    answers the `failure` status and text."""

    async def recorded(request: Request) -> PlainTextResponse:
        await record(request)
        return PlainTextResponse(reply)

    async def failing(request: Request) -> PlainTextResponse:
        status, text = failure
        return PlainTextResponse(text, status_code=status)

    return Starlette(
        routes=[Route(path, recorded, methods=[method]), Route(failing_path, failing, methods=[method])]
    )

"""What every request must pass before an endpoint runs: token, rate, query, body size."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from logikal_square_sync.interfaces.api.auth import RateLimiter, client_of
from logikal_square_sync.interfaces.api.settings import ApiSettings


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyTooLarge(Exception):
    pass


async def check_body(request: Request, limit: int) -> None:
    """413 for a body over `limit` bytes: the declared length first, then what actually arrives."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge


def guarded(
    settings: ApiSettings,
    limiter: RateLimiter,
    params: Collection[str],
    *,
    needs_token: bool = True,
) -> Callable[[Callable[..., Any]], Callable[[Request], Any]]:
    """An endpoint behind the checks, in this order: token (401), rate (429), body (413), query (422)."""

    def wrap(endpoint: Callable[..., Any]) -> Callable[[Request], Any]:
        @functools.wraps(endpoint)
        async def checked(request: Request) -> Response:
            if needs_token:
                client = client_of(request, settings.tokens)
                if client is None:
                    return problem(
                        401,
                        "a valid token is required: send 'Authorization: Bearer <token>'",
                        headers={"WWW-Authenticate": 'Bearer realm="logikal-square-sync"'},
                    )
                wait = limiter.retry_after(client)
                if wait is not None:
                    return problem(
                        429,
                        f"more than {limiter.per_minute} requests in a minute from this token",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
            try:
                await check_body(request, settings.max_body_bytes)
            except BodyTooLarge:
                return problem(413, f"request body larger than {settings.max_body_bytes} bytes")
            unknown = sorted(set(request.query_params.keys()) - set(params))
            if unknown:
                allowed = ", ".join(sorted(params)) or "none"
                return problem(
                    422,
                    f"unknown query parameter(s): {', '.join(unknown)} (this endpoint takes: {allowed})",
                )
            return await endpoint(request)

        return checked

    return wrap

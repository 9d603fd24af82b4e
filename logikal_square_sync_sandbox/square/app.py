"""Starlette wiring: routes, bearer auth, `Square-Version` echo, and faults.

Connection-level faults (a truncated body, a dropped connection) need the
socket, which ASGI does not expose. Under uvicorn the raw `send` callable is
a bound method of the connection's request cycle, whose transport we can
close; the app captures it before Starlette wraps `send`. Under any other
server those two faults degrade to raising, which servers also answer by
closing the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import api
from .errors import SquareApiError, error_body
from .faults import Fault
from .state import SquareSandbox

_CYCLE_KEY = "square_sandbox.cycle"
_SERVER_ERRORS = {
    500: (
        "INTERNAL_SERVER_ERROR",
        "An internal error has occurred, and the API was unable to service your request.",
    ),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable."),
    504: ("GATEWAY_TIMEOUT", "The upstream service did not respond in time."),
}


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class _SandboxStarlette(Starlette):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_CYCLE_KEY] = getattr(send, "__self__", None)
        await super().__call__(scope, receive, send)


async def _close_connection(scope: Scope) -> None:
    cycle = scope.get(_CYCLE_KEY)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("square sandbox: connection fault")
    # close() (not abort()) so bytes already written still reach the client.
    transport.close()
    # Wait until the server has noticed, so it neither logs nor answers the dead request.
    for _ in range(500):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.002)


class _TruncatedResponse(Response):
    """Headers with the full Content-Length, about half the body, then a closed connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        cut = max(1, len(self.body) // 2) if len(self.body) > 1 else 0
        await send({"type": "http.response.body", "body": self.body[:cut], "more_body": True})
        await _close_connection(scope)


class _DroppedConnection(Response):
    def __init__(self) -> None:
        super().__init__(b"", 200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _close_connection(scope)


def create_app(sandbox: SquareSandbox) -> Starlette:
    def respond(status: int, payload: Any, version: str, headers: dict[str, str] | None = None) -> Response:
        sandbox.stats.record_response(status)
        return Response(
            payload if isinstance(payload, bytes) else _dumps(payload),
            status,
            headers={"Square-Version": version, **(headers or {})},
            media_type="application/json",
        )

    def fault_response(fault: Fault, version: str) -> Response | None:
        kind = fault.kind
        if kind == "rate_limit":
            headers = {}
            if fault.retry_after is not None:
                ra = fault.retry_after
                headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
            body = error_body("RATE_LIMIT_ERROR", "RATE_LIMITED", "Too many requests. Slow down.")
            return respond(429, body, version, headers)
        if kind == "server_error":
            status = fault.status or 500
            code, detail = _SERVER_ERRORS[status]
            return respond(status, error_body("API_ERROR", fault.code or code, detail), version)
        if kind == "unauthorized":
            code = fault.code or "UNAUTHORIZED"
            detail = "This request could not be authorized."
            if code == "ACCESS_TOKEN_EXPIRED":
                detail = "The access token has expired."
            return respond(401, error_body("AUTHENTICATION_ERROR", code, detail), version)
        if kind == "forbidden":
            code = fault.code or "INSUFFICIENT_SCOPES"
            detail = "The merchant has not granted this application the required permissions."
            return respond(403, error_body("AUTHENTICATION_ERROR", code, detail), version)
        if kind == "drop_connection":
            return _DroppedConnection()
        return None

    def endpoint(
        name: str, handler: Callable[[dict[str, Any]], dict[str, Any] | bytes], has_body: bool
    ) -> Callable:
        async def route(request: Request) -> Response:
            version = request.headers.get("square-version") or sandbox.config.square_version
            sandbox.stats.record_request(name)
            body: Any = {}
            body_error = None
            if has_body:
                raw = await request.body()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body_error = SquareApiError(
                            400, "EXPECTED_JSON_BODY", "The request body is not valid JSON."
                        )
                    else:
                        if not isinstance(body, dict):
                            body_error = SquareApiError(
                                400, "EXPECTED_OBJECT", "The request body must be an object."
                            )
            has_cursor = isinstance(body, dict) and bool(body.get("cursor"))

            fault = sandbox.faults.take(name, has_cursor)
            if fault is not None:
                fault.requests.append(body)
                sandbox.stats.record_fault(fault.kind)
                if fault.delay_seconds > 0:
                    await asyncio.sleep(fault.delay_seconds)
                while fault.kind == "hold" and not fault.released.is_set():
                    # Polled rather than awaited in a thread, so a stopping server can cancel it.
                    await asyncio.sleep(0.01)
                if fault.kind == "expired_cursor":
                    sandbox.cursors.invalidate(body.get("cursor"))
                    err = SquareApiError(400, "INVALID_CURSOR", "The cursor has expired.", "cursor")
                    return respond(400, err.body(), version)
                response = fault_response(fault, version)
                if response is not None:
                    return response

            if request.headers.get("authorization") != f"Bearer {sandbox.config.access_token}":
                body401 = error_body(
                    "AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized."
                )
                return respond(401, body401, version)
            if body_error is not None:
                return respond(body_error.status, body_error.body(), version)
            try:
                # Off the event loop: a 1M-row query must not stall other connections.
                payload = await run_in_threadpool(handler, body)
            except SquareApiError as err:
                return respond(err.status, err.body(), version)
            response = respond(200, payload, version)
            if fault is not None and fault.kind == "truncated":
                return _TruncatedResponse(
                    response.body, 200, headers={"Square-Version": version}, media_type="application/json"
                )
            if fault is not None and fault.kind == "cut_json":
                # What a proxy that cuts bodies short sends: valid HTTP, Content-Length of what is there.
                cut = response.body[: max(1, len(response.body) // 2)]
                return Response(cut, 200, headers={"Square-Version": version}, media_type="application/json")
            # Hooks run before the page is sent, so the client cannot request the next one meanwhile.
            await run_in_threadpool(sandbox.hooks.served, name)
            return response

        return route

    routes = [
        Route(
            "/v2/locations",
            endpoint("locations", lambda _body: api.list_locations(sandbox), False),
            methods=["GET"],
        ),
        Route(
            "/v2/catalog/search",
            endpoint("catalog_search", lambda body: api.search_catalog_objects(sandbox, body), True),
            methods=["POST"],
        ),
        Route(
            "/v2/orders/search",
            endpoint("orders_search", lambda body: api.search_orders(sandbox, body), True),
            methods=["POST"],
        ),
    ]
    inventory = endpoint(
        "inventory_counts", lambda body: api.batch_retrieve_inventory_counts(sandbox, body), True
    )
    routes.append(Route("/v2/inventory/counts/batch-retrieve", inventory, methods=["POST"]))
    # The deprecated alias is still served by Square.
    routes.append(Route("/v2/inventory/batch-retrieve-counts", inventory, methods=["POST"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        sandbox.stats.record_request(None)
        status = getattr(exc, "status_code", 500)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "BAD_REQUEST")
        detail = getattr(exc, "detail", None) or "Request failed."
        version = request.headers.get("square-version") or sandbox.config.square_version
        return respond(status, error_body("INVALID_REQUEST_ERROR", code, str(detail)), version)

    app = _SandboxStarlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.sandbox = sandbox
    return app

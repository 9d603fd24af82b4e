"""Starlette routes of the fake MBIOE v3 API, mounted at `/MbioeService.svc/api/v3`.

Each request: count it, take a queued fault, authenticate (401 is immediate,
like a server that rejects a token before doing any work), validate the body
(400, also immediate), wait the modelled latency with `asyncio.sleep` so that
parallel sessions really overlap, then apply the session rules under the
sandbox lock. A lost answer (fault `lost_response`, or the first select of a
target under `first_select_answer_lost`) is applied and then its connection
closed without a byte: the app returns a value instead of None, on which
uvicorn closes the transport without sending a response. A gateway's error
(fault `applied_error`, or a select under `select_applied_error_status`) is
applied too, and then answered with the gateway's status and HTML page.

Paths the swagger has but the sandbox does not implement answer 404 (unknown
path) or 501 (known path, other method) so they can never be mistaken for the
API's own 405 "wrong session state".
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from .faults import Fault
from .service import LogikalSandbox
from .sessions import INVALID_BODY, AnswerLost, ApiError, AppliedThenFailed, Session, not_found
from .thumbnails import MAX_SIDE, render_png

BASE_PATH = "/MbioeService.svc/api/v3"
SERVICE_VERSION = "12.2.6.59"

_TRUNCATION_LOG = "ASGI callable returned without completing response"
_LOST_ANSWER_LOG = "ASGI callable should return None"
# Set in the request's scope by a response that must never be sent.
_LOST = "logikal_sandbox.answer_lost"


def create_app(sandbox: LogikalSandbox) -> _ClosesLostAnswers:
    api = _Api(sandbox)
    nav = sandbox.navigator
    # (method, path, handler, whether it needs a session); a route's label is "METHOD path".
    endpoints: list[tuple[str, str, Handler, bool]] = [
        ("GET", "/version", api.version, False),
        ("POST", "/auth", api.login, False),
        ("DELETE", "/auth", api.logout, True),
        ("GET", "/directories", api.listing(nav.list_directories), True),
        ("POST", "/directories/select", api.selection(nav.select_directory, guid=False), True),
        ("GET", "/projects", api.listing(sandbox.served_projects), True),
        ("POST", "/projects/select", api.selection(nav.select_project, guid=True), True),
        ("GET", "/projects/selected", api.listing(nav.selected_project), True),
        ("GET", "/phases", api.listing(sandbox.served_phases), True),
        ("POST", "/phases/select", api.selection(nav.select_phase, guid=True), True),
        ("GET", "/elevations", api.listing(sandbox.served_elevations), True),
        ("POST", "/elevations/select", api.selection(nav.select_elevation, guid=True), True),
        # Before the {elevationId} route, which would otherwise take "selected" as an id.
        ("GET", "/elevations/selected/parts-list", api.parts_list, True),
        ("GET", "/elevations/selected/thumbnail", api.selected_thumbnail, True),
        ("GET", "/elevations/selected/quotation-price", api.quotation_price, True),
        ("GET", "/elevations/{elevationId}/thumbnail", api.thumbnail, True),
    ]
    routes = [
        Route(path, api.endpoint(f"{method} {path}", handler, auth=auth), methods=[method])
        for method, path, handler, auth in endpoints
    ]
    _quiet_truncation_logs()
    return _ClosesLostAnswers(
        Starlette(
            routes=[
                Mount(BASE_PATH, routes=routes),
                # Not LogiKal's: the sandbox's counters for a client in another process (the
                # benchmarks and acceptance runs read the peak of concurrent sessions here).
                Route(STATS_PATH, _stats_endpoint(sandbox), methods=["GET"]),
            ],
            exception_handlers={404: _not_found, 405: _not_implemented},
        )
    )


STATS_PATH = "/_sandbox/stats"


def _stats_endpoint(sandbox: LogikalSandbox) -> Callable[[Request], Awaitable[Response]]:
    async def stats(request: Request) -> Response:
        snapshot = sandbox.stats
        return JSONResponse(
            {
                "logins": snapshot.logins,
                "failed_logins": snapshot.failed_logins,
                "logouts": snapshot.logouts,
                "active_sessions": snapshot.active_sessions,
                "max_concurrent_sessions": snapshot.max_concurrent_sessions,
                "calls": snapshot.calls,
                "parts_lists_served": snapshot.parts_lists_served,
            }
        )

    return stats


class _ClosesLostAnswers:
    """The outermost ASGI app: turns a lost answer into a connection closed without a response.

    ASGI has no message for "close without answering"; uvicorn closes the
    transport without writing anything when the app returns something other
    than None, and Starlette's own app always returns None, hence this wrapper.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        await self.app(scope, receive, send)
        if scope.get(_LOST):
            return _LOST
        return None


class _LostAnswer(Response):
    """Sends nothing and marks the scope, so that `_ClosesLostAnswers` drops the connection."""

    def __init__(self) -> None:
        self.status_code = 0
        self.background = None
        self.body = b""
        self.raw_headers = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_LOST] = True


_GATEWAY_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Time-out"}


def _gateway_error(status: int) -> Response:
    """What a reverse proxy in front of LogiKal answers when it gives up: its own page, no envelope."""
    title = f"{status} {_GATEWAY_REASONS.get(status, 'Server Error')}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n"
        f"<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(page, status_code=status, media_type="text/html")


async def _not_found(request: Request, exc: Exception) -> Response:
    error = ApiError(404, f"The resource '{request.url.path}' does not exist.")
    return JSONResponse(error.body(), status_code=404)


async def _not_implemented(request: Request, exc: Exception) -> Response:
    error = ApiError(501, f"The LogiKal sandbox does not implement {request.method} {request.url.path}.")
    return JSONResponse(error.body(), status_code=501)


def _envelope(data: Any = None, *, with_data: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"data": data} if with_data else {}
    body["hints"] = []
    body["warnings"] = []
    return body


def _ok(data: Any = None, *, with_data: bool = True) -> JSONResponse:
    return JSONResponse(_envelope(data, with_data=with_data))


@dataclass
class _Call:
    request: Request
    session: Session | None
    wait: float

    async def pause(self, extra: float = 0.0) -> None:
        seconds = self.wait + extra
        if seconds > 0:
            await asyncio.sleep(seconds)

    @property
    def live_session(self) -> Session:
        assert self.session is not None
        return self.session


Handler = Callable[[_Call], Awaitable[Response]]


class _Api:
    def __init__(self, sandbox: LogikalSandbox) -> None:
        self.sb = sandbox

    def endpoint(
        self, label: str, handler: Handler, *, auth: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            self.sb.record_request_start(label)
            status: int | str = 500
            try:
                response = await self._handle(request, label, handler, auth)
                status = "lost" if isinstance(response, _LostAnswer) else response.status_code
                return response
            finally:
                self.sb.record_request_end(label, status)

        return run

    async def _handle(self, request: Request, label: str, handler: Handler, auth: bool) -> Response:
        fault = self.sb.faults.take(label)
        if fault is None and label != "GET /version" and self.sb.random_server_error():
            fault = Fault("error")
        wait = self.sb.latency.sample(label)
        try:
            if fault is not None and fault.kind == "error":
                # A failing server answers after doing (some of) the work, and
                # before looking at the token.
                if wait > 0:
                    await asyncio.sleep(wait)
                raise ApiError(fault.status, fault.message)
            session = self.sb.sessions.authenticate(request.headers.get("authorization")) if auth else None
            if fault is not None and fault.kind == "delay":
                wait += fault.seconds
            if fault is not None and fault.kind == "not_found":
                # A select that fails to find a target that is there: nothing is applied.
                identifier = (await _json_object(request)).get("identifier")
                await _Call(request, session, wait).pause()
                raise not_found(str(identifier))
            response = await handler(_Call(request, session, wait))
        except AnswerLost:
            return _LostAnswer()
        except AppliedThenFailed as failed:
            return _gateway_error(failed.status)
        except ApiError as error:
            if fault is not None and fault.kind == "lost_response":
                return _LostAnswer()
            if fault is not None and fault.kind == "applied_error":
                return _gateway_error(fault.status)
            return JSONResponse(error.body(), status_code=error.status)
        if fault is not None and fault.kind == "truncate":
            return _TruncatedResponse(response)
        if fault is not None and fault.kind == "lost_response":
            return _LostAnswer()
        if fault is not None and fault.kind == "applied_error":
            return _gateway_error(fault.status)
        return response

    # -- general ----------------------------------------------------------------

    async def version(self, call: _Call) -> Response:
        await call.pause()
        return _ok(
            {
                "componentVersions": [
                    {
                        "name": "MBIOE Service",
                        "version": SERVICE_VERSION,
                        "description": "REST Service for the model based input of elements.",
                    },
                    {"name": "LogiKal", "version": SERVICE_VERSION, "description": "Orgadata LogiKal"},
                    {
                        "name": "logikal_square_sync sandbox",
                        "version": "1",
                        "description": "Local fake of the MBIOE API for tests, demo and benchmarks.",
                    },
                ]
            }
        )

    async def login(self, call: _Call) -> Response:
        body = await _json_object(call.request)
        username, password, erp = body.get("username"), body.get("password"), body.get("erp", False)
        if not isinstance(username, str) or not isinstance(password, str) or not isinstance(erp, bool):
            raise ApiError(400, INVALID_BODY)
        cfg = self.sb.config
        if username != cfg.username or password != cfg.password:
            self.sb.record_login(False)
            raise ApiError(401, "Authentication failed. Invalid username or password.")
        # The slow part of a real login (opening the project center) happens
        # before the token exists, so overlapping logins overlap here.
        await call.pause(self.sb.login_delay_seconds)
        session = self.sb.sessions.create(username)
        self.sb.record_login(True)
        return _ok({"username": username, "token": session.token})

    async def logout(self, call: _Call) -> Response:
        await call.pause()
        self.sb.sessions.logout(call.live_session)
        self.sb.record_logout()
        return _ok(with_data=False)

    # -- navigation ---------------------------------------------------------------

    def listing(self, read: Callable[[Session], Any]) -> Handler:
        """A GET that answers what `read` makes of the session."""

        async def handler(call: _Call) -> Response:
            await call.pause()
            with self.sb.lock:
                return _ok(read(call.live_session))

        return handler

    def selection(self, select: Callable[[Session, str], None], *, guid: bool) -> Handler:
        """A POST that moves the session to the body's `identifier` (a GUID if `guid`, else a path)."""

        async def handler(call: _Call) -> Response:
            identifier = await _identifier(call.request, guid=guid)
            await call.pause()
            with self.sb.lock:
                select(call.live_session, identifier)
            return _ok(with_data=False)

        return handler

    # -- elevation content ----------------------------------------------------------

    async def thumbnail(self, call: _Call) -> Response:
        params = _thumbnail_params(call.request)
        elevation_id = _parse_guid(call.request.path_params["elevationId"], status=400)
        await call.pause()
        with self.sb.lock:
            elevation = self.sb.navigator.thumbnail_target(call.live_session, elevation_id)
        return await self._thumbnail_response(elevation, params)

    async def selected_thumbnail(self, call: _Call) -> Response:
        params = _thumbnail_params(call.request)
        await call.pause()
        with self.sb.lock:
            elevation = self.sb.navigator.selected_elevation(call.live_session)
        return await self._thumbnail_response(elevation, params)

    async def _thumbnail_response(self, elevation: Any, params: _ThumbnailParams) -> Response:
        png = await asyncio.to_thread(
            render_png, elevation, params.width, params.height, exterior=params.view == "exterior"
        )
        self.sb.record_served("thumbnail")
        return Response(png, media_type="application/octet-stream")

    async def parts_list(self, call: _Call) -> Response:
        await call.pause()
        with self.sb.lock:
            elevation = self.sb.navigator.selected_elevation(call.live_session)
            source, corrupt = self.sb.parts_list_source(elevation)
        # Built in a worker thread so other sessions' requests keep flowing.
        data = await asyncio.to_thread(self.sb.serve_parts_list, source, corrupt)
        self.sb.record_served("parts_list")
        return _ok(base64.b64encode(data).decode("ascii"))

    async def quotation_price(self, call: _Call) -> Response:
        await call.pause()
        with self.sb.lock:
            elevation = self.sb.navigator.selected_elevation(call.live_session)
            area = elevation.width * elevation.height / 1e6
            price = area * elevation.system.kg_per_m2 * 9.5 * elevation.amount
        # LogiKal formats the price as a display string (docs/logikal-api.md §6).
        return _ok({"quotationPrice": f"€ {price:,.2f}"})


@dataclass(frozen=True)
class _ThumbnailParams:
    width: int
    height: int
    format: str
    view: str
    with_dimensions: bool
    with_description: bool


def _thumbnail_params(request: Request) -> _ThumbnailParams:
    query = request.query_params
    names = ("width", "height", "format", "view", "withdimensions", "withdescription")
    missing = [name for name in names if name not in query]
    if missing:
        raise ApiError(400, INVALID_BODY, [f"Missing required query parameter '{name}'." for name in missing])
    try:
        width, height = int(query["width"]), int(query["height"])
    except ValueError:
        raise ApiError(400, INVALID_BODY, ["'width' and 'height' must be integers."]) from None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ApiError(400, INVALID_BODY, [f"'width' and 'height' must be between 1 and {MAX_SIDE}."])
    image_format, view = query["format"].upper(), query["view"].lower()
    flags = query["withdimensions"].lower(), query["withdescription"].lower()
    errors = []
    if image_format not in ("PNG", "JPG", "EMF"):
        errors.append("Valid values for 'format' are: 'PNG', 'JPG', 'EMF'.")
    if view not in ("interior", "exterior"):
        errors.append("Valid values for 'view' are: 'Interior', 'Exterior'.")
    if any(flag not in ("true", "false") for flag in flags):
        errors.append("Valid values for 'withdimensions' and 'withdescription' are: 'true', 'false'.")
    if errors:
        raise ApiError(400, INVALID_BODY, errors)
    return _ThumbnailParams(width, height, image_format, view, flags[0] == "true", flags[1] == "true")


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, INVALID_BODY)
    return body


async def _identifier(request: Request, *, guid: bool) -> str:
    value = (await _json_object(request)).get("identifier")
    if not isinstance(value, str):
        raise ApiError(400, INVALID_BODY)
    return _parse_guid(value, status=400) if guid else value


def _parse_guid(value: str, *, status: int) -> str:
    # .NET parses GUIDs case-insensitively; the API itself always answers lowercase.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(status, INVALID_BODY, [f"'{value}' is not a valid GUID."]) from None


class _TruncatedResponse(Response):
    """Announces the full Content-Length, sends half the body, then drops the connection."""

    def __init__(self, inner: Response) -> None:
        self.status_code = inner.status_code
        self.body = inner.body
        self.background = None
        self.raw_headers = list(inner.raw_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send(
            {"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True}
        )
        # Returning now leaves the response incomplete; the server closes the
        # connection and the client sees a body shorter than announced.


class _DropTruncationNoise(logging.Filter):
    """uvicorn logs an error for every truncated body and lost answer; here they are on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return _TRUNCATION_LOG not in message and _LOST_ANSWER_LOG not in message


def _quiet_truncation_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropTruncationNoise) for f in logger.filters):
        logger.addFilter(_DropTruncationNoise())

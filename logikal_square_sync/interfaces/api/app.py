"""The ASGI application: routes behind their guards."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from logikal_square_sync.interfaces.api.auth import RateLimiter
from logikal_square_sync.interfaces.api.dagster_client import ApiDagster
from logikal_square_sync.interfaces.api.guards import guarded
from logikal_square_sync.interfaces.api.openapi import openapi_document
from logikal_square_sync.interfaces.api.routes import Endpoints
from logikal_square_sync.interfaces.api.settings import ApiSettings


def create_app(settings: ApiSettings) -> Starlette:
    endpoints = Endpoints(ApiDagster(settings.dagster_url, settings.ui_url))
    limiter = RateLimiter(settings.requests_per_minute)
    document = openapi_document()

    def guard(params: tuple[str, ...] = (), needs_token: bool = True):  # noqa: ANN202
        return guarded(settings, limiter, params, needs_token=needs_token)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        Route(
            "/api/v1/sync/force-sync/{project_id}",
            guard(("name", "wait"))(endpoints.force_sync),
            methods=["POST"],
        ),
        Route("/api/v1/sync/force-sync", guard(("name", "wait"))(endpoints.force_sync), methods=["POST"]),
        Route("/api/v1/sync/runs/{run_id}", guard()(endpoints.run), methods=["GET"]),
        Route("/api/v1/sync/status", guard(("project_id",))(endpoints.status), methods=["GET"]),
        Route("/api/v1/health", guard(needs_token=False)(endpoints.health), methods=["GET"]),
        Route("/api/v1/openapi.json", guard(needs_token=False)(openapi), methods=["GET"]),
    ]
    return Starlette(routes=routes)

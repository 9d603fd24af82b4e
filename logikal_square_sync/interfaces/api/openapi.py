"""The OpenAPI document served at /api/v1/openapi.json (written by hand: Starlette has no models
to derive it from, and the ERP's integrators read it; test_api.py checks it lists every route)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema or _ERROR}}
    return {"description": description, "content": content}


_COMMON = {
    "401": _answer("missing or wrong token"),
    "413": _answer("request body too large"),
    "422": _answer("unknown or invalid query parameter (named in the message)"),
    "429": _answer("rate limit of this token exceeded (see Retry-After)"),
    "503": _answer("Dagster (or, for a new project, LogiKal) cannot be reached"),
}
_RUN = {"$ref": "#/components/schemas/Run"}
_WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "seconds to hold the answer for the run to end (0 answers at once)",
    "schema": {"type": "integer", "minimum": 0, "maximum": 300, "default": 60},
}
_FORCE_SYNC_ANSWERS = {
    "200": _answer("the run ended within `wait`: SUCCESS or FAILURE, with rows and errors", _RUN),
    "202": _answer("the run is QUEUED or STARTED: poll status_url", _RUN),
    "404": _answer("no such project, neither in the warehouse nor at LogiKal"),
    "409": _answer("the name matches several projects: pass the GUID"),
    "502": _answer("Dagster refused the launch (the message says why)"),
    **_COMMON,
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "logikal_square_sync API",
            "version": "1",
            "description": "Force sync of LogiKal projects and data freshness, for the ERP (docs/api.md).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Run": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["status", "run_id", "run_url", "project"],
                    "properties": {
                        "status": {"type": "string", "enum": ["QUEUED", "STARTED", "SUCCESS", "FAILURE"]},
                        "run_id": {"type": "string"},
                        "run_url": {"type": "string"},
                        "status_url": {"type": "string"},
                        "project": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "nullable": True},
                                "name": {"type": "string", "nullable": True},
                            },
                        },
                        "new": {"type": "boolean"},
                        "duration_s": {"type": "number", "nullable": True},
                        "rows": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": {"type": "integer"},
                            },
                        },
                        "errors": {"type": "array", "items": {"type": "string"}},
                        "dagster_status": {"type": "string"},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/sync/force-sync/{project_id}": {
                "post": {
                    "summary": "Force sync one LogiKal project (by GUID); a project new at LogiKal too",
                    "parameters": [
                        {"name": "project_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        _WAIT,
                    ],
                    "responses": _FORCE_SYNC_ANSWERS,
                }
            },
            "/api/v1/sync/force-sync": {
                "post": {
                    "summary": "Force sync one LogiKal project by name",
                    "parameters": [
                        {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}},
                        _WAIT,
                    ],
                    "responses": _FORCE_SYNC_ANSWERS,
                }
            },
            "/api/v1/sync/runs/{run_id}": {
                "get": {
                    "summary": "A force sync's state and, once ended, its outcome",
                    "parameters": [
                        {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": _answer("the run ended", _RUN),
                        "202": _answer("the run is queued or running", _RUN),
                        "404": _answer("no force-sync run with this id"),
                        **_COMMON,
                    },
                }
            },
            "/api/v1/sync/status": {
                "get": {
                    "summary": "Data freshness: per asset, or one project's contents (?project_id=)",
                    "parameters": [
                        {"name": "project_id", "in": "query", "required": False, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": _answer("freshness", {"type": "object"}),
                        "404": _answer("no such live project"),
                        **_COMMON,
                    },
                }
            },
            "/api/v1/health": {
                "get": {
                    "summary": "Dagster's storage, daemon and code location (no token needed)",
                    "security": [],
                    "responses": {
                        "200": _answer("healthy", {"type": "object"}),
                        "503": _answer("a part is unhealthy (named in checks)", {"type": "object"}),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document (no token needed)",
                    "security": [],
                    "responses": {"200": _answer("OpenAPI 3", {"type": "object"})},
                }
            },
        },
    }

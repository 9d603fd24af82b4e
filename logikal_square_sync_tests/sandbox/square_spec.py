"""Square's OpenAPI spec, patched for offline use, and a response validator over it.

The vendor spec cannot be loaded as is: 60 `$ref`s point at an external
common schema (String/Number/Boolean/PhoneNumber) and one internal ref
(`CatalogModifierToggleOverrideType`) dangles. Both are inlined here.
Operations only document `200`; Square sends its error envelope in the same
response type (every `*Response` has `errors`), so each operation gets that
schema as its `default` response too, which lets error bodies be validated.

Validation forbids properties the spec does not define, so a misspelt field
in the sandbox fails here instead of silently passing.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from logikal_square_sync_tests.sandbox.vendor_specs import SQUARE

SERVER = "https://connect.squareup.com"
_COMMON_PREFIX = "https://developer-production-s.squarecdn.com/schemas/v1/common.json#squareup.common."
_COMMON_TYPES = {"String": "string", "Number": "number", "Boolean": "boolean", "PhoneNumber": "string"}
# Operations the sandbox serves; trimming the spec to them keeps loading fast.
OPERATIONS = {
    ("get", "/v2/locations"),
    ("post", "/v2/catalog/search"),
    ("post", "/v2/orders/search"),
    ("post", "/v2/inventory/counts/batch-retrieve"),
    ("post", "/v2/inventory/batch-retrieve-counts"),
}


def spec_path() -> Path | None:
    return SQUARE.path()


def _patch_refs(node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMMON_PREFIX):
            del node["$ref"]
            node["type"] = _COMMON_TYPES[ref.removeprefix(_COMMON_PREFIX)]
        for value in node.values():
            _patch_refs(value)
    elif isinstance(node, list):
        for value in node:
            _patch_refs(value)


def patched_spec(raw: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(raw)
    _patch_refs(spec)
    schemas = spec["components"]["schemas"]
    # Described in the spec text as YES / NO / NOT_SET, but never defined.
    schemas.setdefault(
        "CatalogModifierToggleOverrideType", {"type": "string", "enum": ["YES", "NO", "NOT_SET"]}
    )
    paths = {}
    for path, item in spec["paths"].items():
        kept = {m: op for m, op in item.items() if (m, path) in OPERATIONS}
        for op in kept.values():
            op["responses"].setdefault("default", copy.deepcopy(op["responses"]["200"]))
        if kept:
            paths[path] = kept
    spec["paths"] = paths
    return spec


@functools.cache
def openapi() -> OpenAPI:
    path = SQUARE.require()
    spec = patched_spec(json.loads(path.read_text()))
    config = Config(spec_validator_cls=None, additional_properties_default_policy="forbid")
    return OpenAPI.from_dict(spec, config=config)


def validate_response(
    method: str, path: str, status: int, body: bytes, request_body: bytes | None = None
) -> None:
    """Raise if `body` does not match the operation's response schema for `status`."""
    request = MockRequest(SERVER, method.lower(), path, data=request_body)
    response = MockResponse(body, status_code=status, content_type="application/json")
    openapi().validate_response(request, response)

"""Validate LogiKal response bodies against the vendor's Swagger 2.0 definitions.

The swagger's definition names are .NET type names full of backticks, commas,
brackets and spaces (`SuccessfulResponseSchemaWithData`1[[...]]`), which make
awkward JSON-pointer refs; they are renamed to safe names and every
`#/definitions/...` ref is rewritten to match before handing the schemas to
jsonschema's Draft 4 validator (the dialect Swagger 2.0 is based on).

`strict=True` also forbids properties the swagger does not declare, so a
misspelled field in the sandbox (or a client fixture) fails validation instead
of passing unnoticed. `format: guid` is checked as a lowercase hyphenated
GUID, the form the API answers with.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from logikal_square_sync_tests.sandbox.vendor_specs import LOGIKAL

ERROR_SCHEMA = "Ofcas.Lk.MbioeService.Contracts.Documentation.Schema.ErrorResponseSchema"
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _format_checker(*, lowercase_guids: bool) -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    @checker.checks("guid")
    def is_guid(value: object) -> bool:
        if not isinstance(value, str):
            return True
        # The server answers lowercase; requests may use any case (.NET parses either).
        return bool(GUID_RE.match(value if lowercase_guids else value.lower()))

    @checker.checks("uint64")
    def is_uint64(value: object) -> bool:
        return not isinstance(value, int) or 0 <= value < 2**64

    @checker.checks("int32")
    def is_int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    return checker


class LogikalSpec:
    def __init__(self, path: Path, *, strict: bool = True) -> None:
        self.raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        self.strict = strict
        self._names = self._safe_names(self.raw["definitions"])
        self.definitions = {
            self._names[name]: self._convert(schema) for name, schema in self.raw["definitions"].items()
        }
        self._response_checker = _format_checker(lowercase_guids=True)
        self._request_checker = _format_checker(lowercase_guids=False)

    @staticmethod
    def _safe_names(definitions: dict[str, Any]) -> dict[str, str]:
        names: dict[str, str] = {}
        used: set[str] = set()
        for name in definitions:
            base = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
            safe, n = base, 1
            while safe in used:
                n += 1
                safe = f"{base}_{n}"
            used.add(safe)
            names[name] = safe
        return names

    def _convert(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self._convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/definitions/"):
                out[key] = "#/definitions/" + self._names[value[len("#/definitions/") :]]
            elif key == "format" and node.get("type") == "object":
                continue  # .NET type names, not JSON Schema formats
            else:
                out[key] = self._convert(value)
        if self.strict and out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out

    def definition_name(self, short_name: str) -> str:
        """Safe name of a definition given its .NET name or a unique suffix like 'ProjectData'."""
        for name, safe in self._names.items():
            if name == short_name or safe == short_name or name.endswith("." + short_name):
                return safe
        raise KeyError(short_name)

    def _validator(self, schema: dict[str, Any], *, request: bool = False) -> jsonschema.Draft4Validator:
        root = {**copy.deepcopy(schema), "definitions": self.definitions}
        checker = self._request_checker if request else self._response_checker
        return jsonschema.Draft4Validator(root, format_checker=checker)

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return self.raw["paths"][path][method.lower()]

    def response_schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        """Schema of one documented response; error statuses the swagger omits fall back to the
        error envelope (the real server answers e.g. 409 to POST /directories/select,
        docs/logikal-api.md §2)."""
        responses = self.operation(method, path)["responses"]
        documented = responses.get(str(status))
        if documented is not None:
            schema = documented.get("schema")
            return self._convert(schema) if schema is not None else None
        if status >= 400:
            return {"$ref": "#/definitions/" + self._names[ERROR_SCHEMA]}
        raise KeyError(f"{method} {path} documents no {status} response")

    def validate_response(self, method: str, path: str, status: int, body: Any) -> None:
        schema = self.response_schema(method, path, status)
        if schema is None or schema.get("format") == "stream" and schema.get("type") == "string":
            return  # binary body, no JSON to validate
        self._validator(schema).validate(body)

    def validate_definition(self, short_name: str, instance: Any) -> None:
        self._validator({"$ref": "#/definitions/" + self.definition_name(short_name)}).validate(instance)

    def validate_request(self, method: str, path: str, body: Any) -> None:
        for parameter in self.operation(method, path).get("parameters", []):
            if parameter.get("in") == "body":
                self._validator(self._convert(parameter["schema"]), request=True).validate(body)

    def is_binary(self, method: str, path: str) -> bool:
        produces = self.operation(method, path).get("produces", [])
        return "application/octet-stream" in produces


@functools.cache
def load_spec(strict: bool = True) -> LogikalSpec | None:
    """The swagger, or None where it is not found (then `LOGIKAL.require()` in a test skips or fails)."""
    path = LOGIKAL.path()
    return LogikalSpec(path, strict=strict) if path else None

"""Square's error envelope: `{"errors": [{category, code, detail, field?}]}`."""

from __future__ import annotations

from typing import Any

_CATEGORY_BY_STATUS = {
    400: "INVALID_REQUEST_ERROR",
    401: "AUTHENTICATION_ERROR",
    403: "AUTHENTICATION_ERROR",
    404: "INVALID_REQUEST_ERROR",
    405: "INVALID_REQUEST_ERROR",
    429: "RATE_LIMIT_ERROR",
}


class SquareApiError(Exception):
    """A request Square would refuse; carries the status and the one error it reports."""

    def __init__(
        self, status: int, code: str, detail: str, field: str | None = None, category: str | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.category = category or _CATEGORY_BY_STATUS.get(status, "API_ERROR")

    def body(self) -> dict[str, Any]:
        return error_body(self.category, self.code, self.detail, self.field)


def error_body(
    category: str, code: str, detail: str | None = None, field: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"category": category, "code": code}
    if detail is not None:
        error["detail"] = detail
    if field is not None:
        error["field"] = field
    return {"errors": [error]}


def bad_request(code: str, detail: str, field: str | None = None) -> SquareApiError:
    return SquareApiError(400, code, detail, field)

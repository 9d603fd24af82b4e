"""Square Connect v2 over httpx: auth, pinned version, error mapping, cursor pagination."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from logikal_square_sync.http import CallStats, RetryingClient, RetryPolicy

DEFAULT_SQUARE_VERSION = "2025-08-20"  # the release of the OpenAPI spec we follow (docs/square-api.md §1)

# Restarts of one query after expired cursors; more means the cursor life is
# shorter than a page takes to write, and looping would not help.
MAX_CURSOR_RESTARTS = 5


class SquareApiError(RuntimeError):
    """Square refused a request; retrying will not help (bad request, auth, scopes)."""

    def __init__(self, endpoint: str, status: int, errors: list[dict[str, Any]]) -> None:
        self.endpoint = endpoint
        self.status = status
        self.errors = errors
        first = errors[0] if errors else {}
        self.code = first.get("code", "UNKNOWN")
        detail = "; ".join(
            f"{e.get('code')}"
            + (f" ({e['field']})" if e.get("field") else "")
            + (f": {e['detail']}" if e.get("detail") else "")
            for e in errors
        )
        super().__init__(f"Square {endpoint} failed with HTTP {status}: {detail or 'no error body'}")


class CursorExpired(SquareApiError):
    pass


def _errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        errors = response.json().get("errors")
    except ValueError:
        return [{"code": "UNPARSEABLE_ERROR_BODY", "detail": response.text[:200]}]
    return errors if isinstance(errors, list) else []


def _decode_object(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


class SquareClient:
    """One client per sync; `stats` counts its API calls and retries."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        square_version: str = DEFAULT_SQUARE_VERSION,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep else {}
        self._http = RetryingClient(
            base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Square-Version": square_version,
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=10.0),
            retry=retry,
            **kwargs,
        )
        self.cursor_restarts = 0

    @property
    def stats(self) -> CallStats:
        return self._http.stats

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SquareClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check(self, response: httpx.Response, endpoint: str) -> None:
        if not response.is_success:
            errors = _errors_of(response)
            if any(error.get("code") == "INVALID_CURSOR" for error in errors):
                raise CursorExpired(endpoint, response.status_code, errors)
            raise SquareApiError(endpoint, response.status_code, errors)

    def _call(self, method: str, path: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        response, body = self._http.request(method, path, decode=_decode_object, **kwargs)
        self._check(response, endpoint)
        return body

    def _post_raw(self, path: str, endpoint: str, body: dict[str, Any]) -> bytes:
        response, content = self._http.request("POST", path, decode=lambda r: r.content, json=body)
        self._check(response, endpoint)
        return content

    def list_locations(self) -> list[dict[str, Any]]:
        """ListLocations: every location, inactive included; the endpoint has no pagination."""
        return self._call("GET", "/v2/locations", "ListLocations").get("locations", [])

    def pages(
        self, path: str, endpoint: str, body_factory: Callable[[], dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """Follow a POST endpoint's cursor, resending the same body with each cursor.

        The next page is requested in a background thread as soon as this
        page's cursor is known, so it travels while the caller writes this
        one. Only the network wait runs there: the JSON is decoded here, in
        the caller's thread, because a decode holds the GIL for tens of
        milliseconds and would stall every database round trip of the caller.

        An expired cursor (400 INVALID_CURSOR) restarts the query with a fresh
        body from `body_factory`, which callers build from their last
        committed checkpoint, so nothing is skipped and little is re-read.
        """
        restarts = 0
        body = body_factory()
        cursor: str | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="square-page") as fetcher:
            pending = fetcher.submit(self._post_raw, path, endpoint, body)
            while True:
                try:
                    raw = pending.result()
                except CursorExpired:
                    if cursor is None or restarts >= MAX_CURSOR_RESTARTS:
                        raise
                    restarts += 1
                    self.cursor_restarts += 1
                    body, cursor = body_factory(), None
                    pending = fetcher.submit(self._post_raw, path, endpoint, body)
                    continue
                request = {**body, "cursor": cursor} if cursor else body
                try:
                    page = json.loads(raw)
                except ValueError:
                    # A body cut short behind a matching Content-Length: fetch it again, decoding
                    # inside the retry loop this time.
                    self._http.stats.count_retry("JSONDecodeError")
                    page = self._call("POST", path, endpoint, json=request)
                cursor = page.get("cursor")
                if cursor:
                    pending = fetcher.submit(self._post_raw, path, endpoint, {**body, "cursor": cursor})
                yield page
                if not cursor:
                    return

    def search_catalog(self, body_factory: Callable[[], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return self.pages("/v2/catalog/search", "SearchCatalogObjects", body_factory)

    def search_orders(self, body_factory: Callable[[], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return self.pages("/v2/orders/search", "SearchOrders", body_factory)

    def inventory_counts(self, body_factory: Callable[[], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return self.pages("/v2/inventory/counts/batch-retrieve", "BatchRetrieveInventoryCounts", body_factory)

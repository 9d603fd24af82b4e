"""Square Connect v2 over httpx: auth, pinned version, error mapping, cursor pagination."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec

from logikal_square_sync.common.http import CallStats, RetriesExhausted, RetryingClient, RetryPolicy
from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.square.engine.records import (
    Location,
    decode_catalog_page,
    decode_inventory_page,
    locations_of,
)
from logikal_square_sync.warehouse.quarantine import Rejection

if TYPE_CHECKING:
    # Imported where a client is opened (see common/http.py): loading the code location pays nothing.
    import httpx

DEFAULT_SQUARE_VERSION = "2025-08-20"  # the release of the OpenAPI spec we follow (docs/square-api.md §1)

# Restarts of one query after expired cursors; more means the cursor life is
# shorter than a page takes to write, and looping would not help.
MAX_CURSOR_RESTARTS = 5

Body = dict[str, Any]
# Given the request a page answered and the page, the next request, or None after the last page.
NextRequest = Callable[[Body, Body], Body | None]


def follow_cursor(request: Body, page: Body) -> Body | None:
    """The next page of the same query: the same body plus the page's cursor (docs/square-api.md §3)."""
    cursor = page.get("cursor")
    if not cursor:
        return None
    return {**{key: value for key, value in request.items() if key != "cursor"}, "cursor": cursor}


def _describe(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{e.get('code')}"
        + (f" ({e['field']})" if e.get("field") else "")
        + (f": {e['detail']}" if e.get("detail") else "")
        for e in errors
    )


class SquareApiError(RuntimeError):
    """Square refused a request; retrying will not help (bad request, auth, scopes)."""

    def __init__(
        self, endpoint: str, status: int, errors: list[dict[str, Any]], *, message: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.errors = errors
        first = errors[0] if errors else {}
        self.code = first.get("code", "UNKNOWN")
        detail = _describe(errors) or "no error body"
        super().__init__(message or f"Square {endpoint} failed with HTTP {status}: {detail}")


class CursorExpired(SquareApiError):
    pass


class SquareRetriesExhausted(SquareApiError):
    """Square kept answering 429/5xx (or not at all) until the attempts ran out; names its last answer."""

    def __init__(self, endpoint: str, error: RetriesExhausted) -> None:
        errors = _errors_of(error.response) if error.response is not None else []
        status = error.status or 0
        last = f"HTTP {status}: {_describe(errors) or 'no error body'}" if status else "no response"
        super().__init__(endpoint, status, errors, message=f"Square {endpoint} failed with {last} ({error})")


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


class SquareClient(contextlib.AbstractContextManager["SquareClient"]):
    """One client per sync, closed on leaving its `with` block; `stats` counts its API calls and retries."""

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
        import httpx

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

    def report_counts(self) -> dict[str, int]:
        """What a sync's report shows of this client (`sync_report.ClientCounts`)."""
        return {
            "api_calls": self.stats.calls,
            "retries": self.stats.retries,
            "cursor_restarts": self.cursor_restarts,
        }

    def close(self) -> None:
        self._http.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check(self, response: httpx.Response, endpoint: str) -> None:
        if not response.is_success:
            errors = _errors_of(response)
            if any(error.get("code") == "INVALID_CURSOR" for error in errors):
                raise CursorExpired(endpoint, response.status_code, errors)
            raise SquareApiError(endpoint, response.status_code, errors)

    def _request(self, method: str, path: str, endpoint: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
        try:
            response, body = self._http.request(method, path, **kwargs)
        except RetriesExhausted as error:
            raise SquareRetriesExhausted(endpoint, error) from error
        self._check(response, endpoint)
        return response, body

    def _call(self, method: str, path: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        return self._request(method, path, endpoint, decode=_decode_object, **kwargs)[1]

    def _post_raw(self, path: str, endpoint: str, body: dict[str, Any]) -> bytes:
        return self._request("POST", path, endpoint, decode=lambda r: r.content, json=body)[1]

    def list_locations(self) -> tuple[list[Location], list[Rejection]]:
        """ListLocations: every location, inactive included (the endpoint has no pagination), and
        those that failed validation."""
        return locations_of(self._call("GET", "/v2/locations", "ListLocations"))

    def pages(
        self,
        path: str,
        endpoint: str,
        body_factory: Callable[[], Body],
        next_request: NextRequest = follow_cursor,
        decode: Callable[[bytes], Body] = msgspec.json.decode,
    ) -> Iterator[Body]:
        """The pages of a POST search: by default the same body with each page's cursor.

        `next_request` may ask for each next page some other way (a new query
        from where the last page ended, say) and may trim the page it is given
        of records that the next request reads again.

        The next page is requested in a background thread as soon as it is
        known, so it travels while the caller works on this one. Only the
        network wait runs there: the JSON is decoded here, in the caller's
        thread, by `decode` (msgspec by default: a third less CPU than `json`;
        decoding is most of a sync's CPU). A caller that writes pages runs this iterator in a
        thread of its own (`square.pipeline.Prefetched`), so decoding
        overlaps the database's work.

        An expired cursor (400 INVALID_CURSOR) restarts the query with a fresh
        body from `body_factory`, which callers build from their last
        committed checkpoint, so nothing is skipped and little is re-read;
        also when it answers the re-fetch of a page whose body came cut short.
        """
        restarts = 0
        request = body_factory()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="square-page") as fetcher:
            pending = fetcher.submit(self._post_raw, path, endpoint, request)
            while True:
                try:
                    page = self._decode_page(pending.result(), path, endpoint, request, decode)
                except CursorExpired:
                    if not request.get("cursor") or restarts >= MAX_CURSOR_RESTARTS:
                        raise
                    restarts += 1
                    self.cursor_restarts += 1
                    request = body_factory()
                    pending = fetcher.submit(self._post_raw, path, endpoint, request)
                    continue
                following = next_request(request, page)
                if following is not None:
                    pending = fetcher.submit(self._post_raw, path, endpoint, following)
                yield page
                if following is None:
                    return
                request = following

    def _decode_page(
        self, raw: bytes, path: str, endpoint: str, request: Body, decode: Callable[[bytes], Body]
    ) -> Body:
        try:
            return decode(raw)
        except MalformedRecordError:
            raise  # the body is whole; a record in it is wrong
        except ValueError:
            # A body cut short behind a matching Content-Length: fetch it again, decoding
            # inside the retry loop this time (a cut body raises a JSONDecodeError there).
            self._http.stats.count_retry("JSONDecodeError")
            return self._request("POST", path, endpoint, decode=lambda r: decode(r.content), json=request)[1]

    def search_catalog_page(self, body: Body) -> Body:
        """One page of SearchCatalogObjects (a probe: its cursor is not followed)."""
        return self._call("POST", "/v2/catalog/search", "SearchCatalogObjects", json=body)

    def search_catalog(self, body_factory: Callable[[], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """SearchCatalogObjects pages of typed `CatalogObject`s."""
        return self.pages(
            "/v2/catalog/search", "SearchCatalogObjects", body_factory, decode=decode_catalog_page
        )

    def search_orders(
        self,
        body_factory: Callable[[], Body],
        next_request: NextRequest = follow_cursor,
        decode: Callable[[bytes], Body] = msgspec.json.decode,
    ) -> Iterator[Body]:
        return self.pages("/v2/orders/search", "SearchOrders", body_factory, next_request, decode)

    def inventory_counts(self, body_factory: Callable[[], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """BatchRetrieveInventoryCounts pages of typed `InventoryCount`s."""
        return self.pages(
            "/v2/inventory/counts/batch-retrieve",
            "BatchRetrieveInventoryCounts",
            body_factory,
            decode=decode_inventory_page,
        )

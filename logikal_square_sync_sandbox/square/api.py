"""The four Square operations as plain functions: request body in, response body out.

Kept free of HTTP so the rules (validation, filters, paging) read in one
place; `app.py` adds transport, auth and faults. Invalid requests raise
`SquareApiError`, which the app turns into Square's error envelope.
Unknown request fields are ignored, as Square ignores them (a misspelt
`order` instead of `sort_order` silently falls back to the default).

Each search is written as an `evaluate()` of the query against the data as it
stands; with pinned result sets the first page runs it once and its cursors
page through that list, with live ones every page runs it again
(`SquareSandboxConfig.result_sets`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from .catalog import DEFAULT_TYPES, SUPPORTED_TYPES
from .cursors import Chain, body_fingerprint
from .errors import bad_request
from .orders import CLOSED_STATES, STATE_CODE, TIME_COLUMN
from .state import INVENTORY_STATES, SquareSandbox
from .timefmt import InvalidTime, format_ms, parse_rfc3339_us, us_ceil_ms, us_floor_ms

CATALOG_OBJECT_TYPES = frozenset(
    {
        "ITEM",
        "IMAGE",
        "CATEGORY",
        "ITEM_VARIATION",
        "TAX",
        "DISCOUNT",
        "MODIFIER_LIST",
        "MODIFIER",
        "PRICING_RULE",
        "PRODUCT_SET",
        "TIME_PERIOD",
        "MEASUREMENT_UNIT",
        "SUBSCRIPTION_PLAN_VARIATION",
        "ITEM_OPTION",
        "ITEM_OPTION_VAL",
        "CUSTOM_ATTRIBUTE_DEFINITION",
        "QUICK_AMOUNTS_SETTINGS",
        "SUBSCRIPTION_PLAN",
        "AVAILABILITY_PERIOD",
    }
)
MAX_LOCATIONS_PER_ORDER_SEARCH = 10
MAX_LIMIT = 1000
ORDERS_DEFAULT_LIMIT = 500
CATALOG_DEFAULT_LIMIT = 100
INVENTORY_DEFAULT_LIMIT = 1000

Body = dict[str, Any]
_T = TypeVar("_T")


# ---- request field readers ---------------------------------------------------------------------


def _get(body: Body, key: str) -> Any:
    # Square treats an explicit null like an absent field.
    return body.get(key)


def _typed(body: Body, key: str, field: str, expected: type[_T], code: str, described: str) -> _T | None:
    """The value at `key` if it is `expected` (a bool is no integer here), None if absent."""
    value = _get(body, key)
    if value is None:
        return None
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise bad_request(code, f"Expected {described} for `{field}`.", field)
    return value


def _bool(body: Body, key: str, field: str) -> bool:
    return _typed(body, key, field, bool, "EXPECTED_BOOLEAN", "a boolean value") or False


def _int(body: Body, key: str, field: str) -> int | None:
    return _typed(body, key, field, int, "EXPECTED_INTEGER", "an integer value")


def _str(body: Body, key: str, field: str) -> str | None:
    return _typed(body, key, field, str, "EXPECTED_STRING", "a string value")


def _obj(body: Body, key: str, field: str) -> Body | None:
    return _typed(body, key, field, dict, "EXPECTED_OBJECT", "an object")


def _str_list(body: Body, key: str, field: str, allowed: frozenset[str] | None = None) -> list[str] | None:
    value = _typed(body, key, field, list, "EXPECTED_ARRAY", "an array")
    if value is None:
        return None
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise bad_request(
                "EXPECTED_STRING", f"Expected a string value for `{field}[{i}]`.", f"{field}[{i}]"
            )
        if allowed is not None and item not in allowed:
            raise bad_request(
                "INVALID_ENUM_VALUE", f"`{item}` is not a valid value for `{field}[{i}]`.", f"{field}[{i}]"
            )
    return value


def _limit(body: Body, default: int) -> int:
    limit = _int(body, "limit", "limit")
    if limit is None:
        return default
    if limit < 1:
        raise bad_request("VALUE_TOO_LOW", f"`limit` must be at least 1; got {limit}.", "limit")
    if limit > MAX_LIMIT:
        raise bad_request("VALUE_TOO_HIGH", f"`limit` must be at most {MAX_LIMIT}; got {limit}.", "limit")
    return limit


def _time_us(value: Any, field: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_rfc3339_us(value)
    except InvalidTime as exc:
        raise bad_request("INVALID_TIME", f"`{field}` must be an RFC 3339 timestamp: {exc}", field) from None


def _cursor(body: Body) -> str | None:
    cursor = _str(body, "cursor", "cursor")
    return cursor or None


def _chain(
    sb: SquareSandbox,
    endpoint: str,
    fingerprint: str,
    evaluate: Callable[[], Any],
    started_ms: int,
    meta: dict[str, Any] | None = None,
) -> Chain:
    if sb.config.result_sets == "live":
        return Chain(endpoint, fingerprint, None, started_ms, meta or {}, query=evaluate)
    return Chain(endpoint, fingerprint, evaluate(), started_ms, meta or {})


def _page(sb: SquareSandbox, chain: Chain, offset: int, limit: int) -> tuple[Any, str | None]:
    items = chain.current_items()
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return page, sb.cursors.issue(chain, offset + limit) if more else None


# ---- ListLocations -----------------------------------------------------------------------------


def list_locations(sb: SquareSandbox) -> Body:
    return {"locations": sb.locations()}


# ---- SearchCatalogObjects ----------------------------------------------------------------------


def search_catalog_objects(sb: SquareSandbox, body: Body) -> Body:
    types_given = _str_list(body, "object_types", "object_types", CATALOG_OBJECT_TYPES)
    types = frozenset(types_given) & SUPPORTED_TYPES if types_given else DEFAULT_TYPES
    include_deleted = _bool(body, "include_deleted_objects", "include_deleted_objects")
    include_related = _bool(body, "include_related_objects", "include_related_objects")
    include_path = _bool(body, "include_category_path_to_root", "include_category_path_to_root")
    if include_deleted and include_path:
        raise bad_request(
            "CONFLICTING_PARAMETERS",
            "`include_deleted_objects` and `include_category_path_to_root` cannot both be true.",
            "include_category_path_to_root",
        )
    begin_us = _time_us(_get(body, "begin_time"), "begin_time")
    if _obj(body, "query", "query"):
        raise bad_request("BAD_REQUEST", "The sandbox does not implement catalog `query` filters.", "query")
    limit = _limit(body, CATALOG_DEFAULT_LIMIT)
    cursor = _cursor(body)
    fingerprint = body_fingerprint("catalog_search", body)

    def evaluate() -> list[str]:
        # Deleted objects come back whenever begin_time is set (forum t/23637).
        ids = sb.catalog.select(
            types,
            include_deleted or begin_us is not None,
            None if begin_us is None else us_floor_ms(begin_us),
        )
        if sb.config.catalog_order == "updated_at":
            ids.sort(key=lambda oid: (sb.catalog.records[oid].updated_ms, oid))
        else:
            # The result order is undocumented: shuffle it, deterministically per query.
            ids.sort(key=lambda oid: hashlib.blake2b(f"{fingerprint}:{oid}".encode(), digest_size=8).digest())
        return ids

    with sb.lock:
        if cursor is not None:
            chain, offset = sb.cursors.resolve(cursor, "catalog_search", fingerprint)
        else:
            meta = {"latest_ms": sb.catalog.latest_ms()}
            chain, offset = _chain(sb, "catalog_search", fingerprint, evaluate, sb.now_ms(), meta), 0
        page, next_cursor = _page(sb, chain, offset, limit)
        records = [sb.catalog.records[oid] for oid in page]
        out: Body = {}
        if records:
            out["objects"] = [sb.catalog.render(rec, include_path) for rec in records]
        if include_related:
            in_page = set(page)
            related: list[str] = []
            for rec in records:
                for rid in sb.catalog.related(rec):
                    if rid not in in_page and rid not in related:
                        related.append(rid)
            if related:
                out["related_objects"] = [
                    sb.catalog.render(sb.catalog.records[r], include_path) for r in related
                ]
        if next_cursor:
            out["cursor"] = next_cursor
        latest = sb.catalog.latest_ms() if chain.query is not None else chain.meta["latest_ms"]
        out["latest_time"] = format_ms(latest)
        return out


# ---- SearchOrders ------------------------------------------------------------------------------


def search_orders(sb: SquareSandbox, body: Body) -> Body | bytes:
    """Returns the encoded body for full orders (see below), a dict for entries."""
    location_ids = _str_list(body, "location_ids", "location_ids")
    if not location_ids:
        raise bad_request("MISSING_REQUIRED_PARAMETER", "`location_ids` is required.", "location_ids")
    if len(location_ids) > MAX_LOCATIONS_PER_ORDER_SEARCH:
        raise bad_request(
            "ARRAY_LENGTH_TOO_LONG",
            f"At most {MAX_LOCATIONS_PER_ORDER_SEARCH} location ids per request; got {len(location_ids)}.",
            "location_ids",
        )
    limit = _limit(body, ORDERS_DEFAULT_LIMIT)
    return_entries = _bool(body, "return_entries", "return_entries")
    query = _obj(body, "query", "query") or {}
    filt = _obj(query, "filter", "query.filter") or {}
    for unsupported in ("fulfillment_filter", "source_filter", "customer_filter"):
        if _get(filt, unsupported) is not None:
            raise bad_request(
                "BAD_REQUEST",
                f"The sandbox does not implement `{unsupported}`.",
                f"query.filter.{unsupported}",
            )

    sort_field, ascending = "CREATED_AT", False
    sort = _obj(query, "sort", "query.sort")
    if sort is not None:
        field = _str(sort, "sort_field", "query.sort.sort_field")
        if field is None:
            raise bad_request(
                "MISSING_REQUIRED_PARAMETER", "`sort_field` is required.", "query.sort.sort_field"
            )
        if field not in TIME_COLUMN:
            raise bad_request(
                "INVALID_ENUM_VALUE", f"`{field}` is not a valid sort field.", "query.sort.sort_field"
            )
        sort_field = field
        order = _str(sort, "sort_order", "query.sort.sort_order")
        if order is not None and order not in ("ASC", "DESC"):
            raise bad_request(
                "INVALID_ENUM_VALUE", f"`{order}` is not a valid sort order.", "query.sort.sort_order"
            )
        ascending = order == "ASC"

    states: list[str] | None = None
    state_filter = _obj(filt, "state_filter", "query.filter.state_filter")
    if state_filter is not None:
        states = _str_list(state_filter, "states", "query.filter.state_filter.states", frozenset(STATE_CODE))
        if not states:
            raise bad_request(
                "MISSING_REQUIRED_PARAMETER", "`states` is required.", "query.filter.state_filter.states"
            )
    if sort_field == "CLOSED_AT" and (not states or not set(states) <= CLOSED_STATES):
        raise bad_request(
            "BAD_REQUEST",
            "Sorting by CLOSED_AT requires a state_filter with closed states only.",
            "query.filter.state_filter",
        )

    start_us = end_us = None
    time_field = None
    dtf = _obj(filt, "date_time_filter", "query.filter.date_time_filter")
    if dtf is not None:
        given = [f for f in ("created_at", "updated_at", "closed_at") if _get(dtf, f) is not None]
        if len(given) > 1:
            raise bad_request(
                "BAD_REQUEST",
                "Only one time range can be filtered on at a time.",
                "query.filter.date_time_filter",
            )
        if given:
            time_field = given[0]
            base = f"query.filter.date_time_filter.{time_field}"
            time_range = _obj(dtf, time_field, base) or {}
            start_us = _time_us(_get(time_range, "start_at"), f"{base}.start_at")
            end_us = _time_us(_get(time_range, "end_at"), f"{base}.end_at")
            if start_us is not None and end_us is not None and start_us > end_us:
                raise bad_request("INVALID_TIME_RANGE", "`start_at` must not be after `end_at`.", base)
            if time_field.upper() != sort_field:
                raise bad_request(
                    "BAD_REQUEST",
                    f"A date_time_filter on `{time_field}` requires sort_field {time_field.upper()}; "
                    f"the sort field is {sort_field}.",
                    "query.sort.sort_field",
                )

    cursor = _cursor(body)
    fingerprint = body_fingerprint("orders_search", body)
    wanted = set(location_ids)
    state_codes = None if states is None else [STATE_CODE[s] for s in states]

    def evaluate(started: int) -> Any:
        loc_rows = [k for k, loc in enumerate(sb.orders.locations) if loc.id in wanted]
        return sb.orders.select(
            loc_rows,
            state_codes,
            sort_field,
            ascending,
            None if start_us is None else us_ceil_ms(start_us),
            # A missing end_at means "as of the first request of this cursor chain", in both modes.
            (started if end_us is None else us_floor_ms(end_us)) if time_field else None,
            # Which orders exist (late offline uploads): at the first request, or now when live.
            sb.now_ms() if sb.config.result_sets == "live" else started,
        )

    with sb.lock:
        if cursor is not None:
            chain, offset = sb.cursors.resolve(cursor, "orders_search", fingerprint)
        else:
            started = sb.now_ms()
            chain, offset = _chain(sb, "orders_search", fingerprint, lambda: evaluate(started), started), 0
        page, next_cursor = _page(sb, chain, offset, limit)
        if return_entries:
            out: Body = {"order_entries": sb.orders.render_entries(page)} if len(page) else {}
            if next_cursor:
                out["cursor"] = next_cursor
            return out
        # Orders are spliced in as ready-made JSON text: the hot path of every sync.
        parts = []
        if len(page):
            parts.append('"orders":[' + ",".join(sb.orders.render_json(page)) + "]")
        if next_cursor:
            parts.append(f'"cursor":{json.dumps(next_cursor)}')
        return ("{" + ",".join(parts) + "}").encode()


# ---- BatchRetrieveInventoryCounts --------------------------------------------------------------


def batch_retrieve_inventory_counts(sb: SquareSandbox, body: Body) -> Body:
    object_ids = _str_list(body, "catalog_object_ids", "catalog_object_ids")
    location_ids = _str_list(body, "location_ids", "location_ids")
    states = _str_list(body, "states", "states", INVENTORY_STATES)
    after_us = _time_us(_get(body, "updated_after"), "updated_after")
    limit = _limit(body, INVENTORY_DEFAULT_LIMIT)
    cursor = _cursor(body)
    fingerprint = body_fingerprint("inventory_counts", body)

    def evaluate() -> list[tuple[str, str, str]]:
        return sb.inventory.select(
            None if object_ids is None else set(object_ids),
            None if location_ids is None else set(location_ids),
            None if states is None else set(states),
            None if after_us is None else us_floor_ms(after_us),
        )

    with sb.lock:
        if cursor is not None:
            chain, offset = sb.cursors.resolve(cursor, "inventory_counts", fingerprint)
        else:
            chain, offset = _chain(sb, "inventory_counts", fingerprint, evaluate, sb.now_ms()), 0
        page, next_cursor = _page(sb, chain, offset, limit)
        out: Body = {}
        if page:
            out["counts"] = [sb.inventory.render(k) for k in page]
        if next_cursor:
            out["cursor"] = next_cursor
        return out

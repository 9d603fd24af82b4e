"""The Square sandbox over real HTTP: behaviours from docs/square-api.md, spec conformance, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from logikal_square_sync_sandbox.clock import ManualClock
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig, create_app
from logikal_square_sync_sandbox.square.state import ResultSets, Tombstones
from logikal_square_sync_sandbox.square.timefmt import parse_rfc3339_us
from logikal_square_sync_tests.clock import ANCHOR

from . import square_spec
from .vendor_specs import SQUARE

TOKEN = "sandbox-square-token"
ORDERS = "/v2/orders/search"
CATALOG = "/v2/catalog/search"
LOCATIONS = "/v2/locations"
INVENTORY = "/v2/inventory/counts/batch-retrieve"
# Validating a body costs ~2.5 ms per order; bigger pages are checked by structure only.
VALIDATE_MAX_BYTES = 120_000


def test_spec_is_available() -> None:
    # The sandbox's responses are only worth something if they are checked against the vendor's spec.
    assert SQUARE.require().is_file()


def ts(text: str) -> datetime:
    return datetime.fromtimestamp(parse_rfc3339_us(text) / 1e6, tz=UTC)


def now_to_ms(sandbox: SquareSandbox) -> datetime:
    """The sandbox's current time, at its (millisecond) precision."""
    return datetime.fromtimestamp(sandbox.now_ms() / 1000, tz=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Api:
    """An httpx client that checks every response it gets against Square's spec."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.validated = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        validate: bool = True,
    ) -> httpx.Response:
        response = self.http.request(method, path, json=body, headers=headers)
        # Without the spec (a clone alone) the behaviour is still tested; test_spec_is_available says why
        # conformance is not.
        if validate and SQUARE.path() is not None and len(response.content) <= VALIDATE_MAX_BYTES:
            square_spec.validate_response(method, path, response.status_code, response.content)
            self.validated += 1
        return response

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, method: str, path: str, body: Any, status: int, code: str) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert response.status_code == status, response.text
        error = response.json()["errors"][0]
        assert error["code"] == code, error
        return error

    def pages(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = self.ok("POST", path, body)
        yield page
        while "cursor" in page:
            page = self.ok("POST", path, {**body, "cursor": page["cursor"]})
            yield page

    def all_orders(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [o for page in self.pages(ORDERS, body) for o in page.get("orders", [])]


@pytest.fixture
def config() -> SquareSandboxConfig:
    return SquareSandboxConfig(orders=300, locations=4)


@pytest.fixture
def sandbox(config: SquareSandboxConfig) -> SquareSandbox:
    return SquareSandbox(config)


@pytest.fixture
def api(sandbox: SquareSandbox) -> Iterator[Api]:
    with serve_in_thread(create_app(sandbox)) as served:
        client = Api(served.url)
        yield client
        client.http.close()


def location_ids(sandbox: SquareSandbox) -> list[str]:
    return [loc["id"] for loc in sandbox.locations()]


def updated_asc(sandbox: SquareSandbox, **time_range: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location_ids": location_ids(sandbox),
        "query": {"sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}},
        "limit": 100,
    }
    if time_range:
        body["query"]["filter"] = {"date_time_filter": {"updated_at": time_range}}
    return body


# ---- spec helper ---------------------------------------------------------------------------------


def test_spec_helper_rejects_unknown_fields_and_bad_enums() -> None:
    SQUARE.require()
    with pytest.raises(Exception, match="orderz"):
        square_spec.validate_response("post", ORDERS, 200, b'{"orderz":[]}')
    with pytest.raises(Exception, match="INVALID"):
        bad = b'{"errors":[{"category":"NOPE","code":"INVALID_CURSOR"}]}'
        square_spec.validate_response("post", ORDERS, 400, bad)


# ---- auth and headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", LOCATIONS), ("POST", CATALOG), ("POST", ORDERS), ("POST", INVENTORY)]
)
def test_requests_without_the_bearer_token_get_401(api: Api, method: str, path: str) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        response = api.call(method, path, {} if method == "POST" else None, headers=headers)
        assert response.status_code == 401
        assert response.json()["errors"][0] == {
            "category": "AUTHENTICATION_ERROR",
            "code": "UNAUTHORIZED",
            "detail": "This request could not be authorized.",
        }


def test_square_version_is_echoed_with_a_default(api: Api) -> None:
    assert api.call("GET", LOCATIONS).headers["Square-Version"] == "2025-08-20"
    pinned = api.call("GET", LOCATIONS, headers={"Square-Version": "2024-01-18"})
    assert pinned.headers["Square-Version"] == "2024-01-18"


def test_rotated_token_is_refused(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.set_access_token("rotated")
    assert api.call("GET", LOCATIONS).status_code == 401


# ---- locations -------------------------------------------------------------------------------


def test_locations_are_all_returned_sorted_by_name_without_updated_at(
    api: Api, sandbox: SquareSandbox
) -> None:
    page = api.ok("GET", LOCATIONS)
    assert "cursor" not in page
    locations = page["locations"]
    assert locations == sandbox.locations()
    assert [loc["name"] for loc in locations] == sorted(loc["name"] for loc in locations)
    assert {loc["status"] for loc in locations} == {"ACTIVE", "INACTIVE"}
    assert all("updated_at" not in loc for loc in locations)

    new_id = sandbox.add_location("Aardvark Plaza")
    assert api.ok("GET", LOCATIONS)["locations"][0]["id"] == new_id


def test_small_sellers_keep_at_least_one_active_location() -> None:
    for count in (1, 2, 3, 8):
        statuses = [
            loc["status"] for loc in SquareSandbox(SquareSandboxConfig(orders=0, locations=count)).locations()
        ]
        assert "ACTIVE" in statuses
        assert statuses.count("INACTIVE") == min(int(count / 4 + 0.5), count - 1)


# ---- orders: paging ----------------------------------------------------------------------------


def test_order_pages_cover_every_order_exactly_once(api: Api, sandbox: SquareSandbox) -> None:
    body = updated_asc(sandbox)
    body["limit"] = 37
    pages = list(api.pages(ORDERS, body))
    assert all(len(p["orders"]) == 37 for p in pages[:-1]) and "cursor" not in pages[-1]
    orders = [o for p in pages for o in p["orders"]]
    assert len(orders) == len({o["id"] for o in orders}) == sandbox.order_count() == 300
    stamps = [parse_rfc3339_us(o["updated_at"]) for o in orders]
    assert stamps == sorted(stamps)
    truth = {o["id"]: o for o in sandbox.iter_orders()}
    assert all(truth[o["id"]] == o for o in orders)


def test_default_sort_is_created_at_descending_and_default_limit_is_500() -> None:
    sandbox = SquareSandbox(SquareSandboxConfig(orders=1200, locations=2))
    with serve_in_thread(create_app(sandbox)) as served:
        api = Api(served.url)
        page = api.ok("POST", ORDERS, {"location_ids": location_ids(sandbox)})
        assert len(page["orders"]) == 500 and "cursor" in page
        created = [parse_rfc3339_us(o["created_at"]) for o in page["orders"]]
        assert created == sorted(created, reverse=True)
        assert (
            len(api.ok("POST", ORDERS, {"location_ids": location_ids(sandbox), "limit": 1000})["orders"])
            == 1000
        )


def test_orders_have_the_documented_shape(api: Api, sandbox: SquareSandbox) -> None:
    orders = api.all_orders(updated_asc(sandbox))
    states = {o["state"] for o in orders}
    assert states <= {"OPEN", "COMPLETED", "CANCELED"} and "COMPLETED" in states
    variation_ids = {obj["id"] for obj in sandbox.catalog_objects() if obj["type"] == "ITEM_VARIATION"}
    for order in orders:
        assert ("closed_at" in order) == (order["state"] != "OPEN")
        assert 1 <= len(order["line_items"]) <= 5
        for line in order["line_items"]:
            assert isinstance(line["quantity"], str) and float(line["quantity"]) > 0
            assert line["catalog_object_id"] in variation_ids
        assert order["total_money"]["amount"] == sum(
            li["total_money"]["amount"] for li in order["line_items"]
        )
    # Both precisions occur, and clients must parse both.
    stamps = [o["updated_at"] for o in orders]
    assert any(len(s) == 20 for s in stamps) and any(len(s) == 24 for s in stamps)
    line_counts = [len(o["line_items"]) for o in orders]
    assert 2.5 < sum(line_counts) / len(line_counts) < 3.5


def test_return_entries_lists_ids_locations_and_versions(api: Api, sandbox: SquareSandbox) -> None:
    body = {**updated_asc(sandbox), "return_entries": True}
    entries = [e for page in api.pages(ORDERS, body) for e in page["order_entries"]]
    truth = {o["id"]: o for o in sandbox.iter_orders()}
    assert len(entries) == len(truth)
    for entry in entries:
        order = truth[entry["order_id"]]
        assert entry == {
            "order_id": order["id"],
            "location_id": order["location_id"],
            "version": order["version"],
        }


# ---- orders: filters and rules -----------------------------------------------------------------


def test_time_range_ends_are_inclusive(api: Api, sandbox: SquareSandbox) -> None:
    target = next(iter(sandbox.iter_orders()))
    stamp = target["updated_at"]
    ids = {o["id"] for o in api.all_orders(updated_asc(sandbox, start_at=stamp, end_at=stamp))}
    assert target["id"] in ids
    assert ids == sandbox.order_ids_updated_between(ts(stamp), ts(stamp))


def test_filter_window_matches_the_truth(api: Api, sandbox: SquareSandbox) -> None:
    end = now_to_ms(sandbox) - timedelta(days=3)
    start = end - timedelta(days=10)
    got = {o["id"] for o in api.all_orders(updated_asc(sandbox, start_at=iso(start), end_at=iso(end)))}
    assert got and got == sandbox.order_ids_updated_between(start, end)


def test_created_at_filter_with_created_at_sort(api: Api, sandbox: SquareSandbox) -> None:
    start = now_to_ms(sandbox) - timedelta(days=5)
    body = {
        "location_ids": location_ids(sandbox),
        "query": {
            "filter": {"date_time_filter": {"created_at": {"start_at": iso(start)}}},
            "sort": {"sort_field": "CREATED_AT"},
        },
    }
    orders = api.all_orders(body)
    expected = {o["id"] for o in sandbox.iter_orders() if ts(o["created_at"]) >= start}
    assert {o["id"] for o in orders} == expected


def test_filter_field_must_equal_sort_field(api: Api, sandbox: SquareSandbox) -> None:
    locs = location_ids(sandbox)
    window = {"updated_at": {"start_at": "2020-01-01T00:00:00Z"}}
    # The default sort is CREATED_AT, so an updated_at filter alone is refused too.
    for sort in (None, {"sort_field": "CREATED_AT", "sort_order": "ASC"}):
        query: dict[str, Any] = {"filter": {"date_time_filter": window}}
        if sort:
            query["sort"] = sort
        api.error("POST", ORDERS, {"location_ids": locs, "query": query}, 400, "BAD_REQUEST")
    two = {
        "updated_at": {"start_at": "2020-01-01T00:00:00Z"},
        "created_at": {"start_at": "2020-01-01T00:00:00Z"},
    }
    api.error(
        "POST",
        ORDERS,
        {
            "location_ids": locs,
            "query": {"filter": {"date_time_filter": two}, "sort": {"sort_field": "UPDATED_AT"}},
        },
        400,
        "BAD_REQUEST",
    )


def test_closed_at_sort_needs_closed_states(api: Api, sandbox: SquareSandbox) -> None:
    locs = location_ids(sandbox)
    sort = {"sort_field": "CLOSED_AT", "sort_order": "ASC"}
    api.error("POST", ORDERS, {"location_ids": locs, "query": {"sort": sort}}, 400, "BAD_REQUEST")
    body = {
        "location_ids": locs,
        "query": {"sort": sort, "filter": {"state_filter": {"states": ["COMPLETED"]}}},
    }
    orders = api.all_orders(body)
    assert orders and {o["state"] for o in orders} == {"COMPLETED"}
    closed = [parse_rfc3339_us(o["closed_at"]) for o in orders]
    assert closed == sorted(closed)


def test_state_filter(api: Api, sandbox: SquareSandbox) -> None:
    body = {
        **updated_asc(sandbox),
        "query": {
            "filter": {"state_filter": {"states": ["OPEN", "CANCELED"]}},
            "sort": {"sort_field": "UPDATED_AT"},
        },
    }
    orders = api.all_orders(body)
    expected = {o["id"] for o in sandbox.iter_orders() if o["state"] in ("OPEN", "CANCELED")}
    assert {o["id"] for o in orders} == expected
    api.error(
        "POST",
        ORDERS,
        {**body, "query": {"filter": {"state_filter": {"states": ["LOST"]}}}},
        400,
        "INVALID_ENUM_VALUE",
    )


def test_location_ids_are_required_and_capped_at_ten(api: Api, sandbox: SquareSandbox) -> None:
    api.error("POST", ORDERS, {}, 400, "MISSING_REQUIRED_PARAMETER")
    api.error("POST", ORDERS, {"location_ids": []}, 400, "MISSING_REQUIRED_PARAMETER")
    eleven = location_ids(sandbox) + [f"LFAKE{i}" for i in range(7)]
    assert (
        api.error("POST", ORDERS, {"location_ids": eleven}, 400, "ARRAY_LENGTH_TOO_LONG")["field"]
        == "location_ids"
    )
    one = location_ids(sandbox)[:1]
    orders = api.all_orders({"location_ids": one, "limit": 200})
    assert orders and {o["location_id"] for o in orders} == set(one)


@pytest.mark.parametrize(
    ("limit", "code"),
    [(0, "VALUE_TOO_LOW"), (-5, "VALUE_TOO_LOW"), (1001, "VALUE_TOO_HIGH"), ("100", "EXPECTED_INTEGER")],
)
def test_order_limit_range(api: Api, sandbox: SquareSandbox, limit: Any, code: str) -> None:
    error = api.error("POST", ORDERS, {"location_ids": location_ids(sandbox), "limit": limit}, 400, code)
    assert error["field"] == "limit"


def test_bad_timestamps_and_bodies_are_refused(api: Api, sandbox: SquareSandbox) -> None:
    api.error("POST", ORDERS, updated_asc(sandbox, start_at="yesterday"), 400, "INVALID_TIME")
    api.error("POST", ORDERS, updated_asc(sandbox, start_at="2024-05-01T00:00:00"), 400, "INVALID_TIME")
    api.error(
        "POST",
        ORDERS,
        updated_asc(sandbox, start_at="2024-05-02T00:00:00Z", end_at="2024-05-01T00:00:00Z"),
        400,
        "INVALID_TIME_RANGE",
    )
    response = api.call("POST", ORDERS, None, headers={"Content-Type": "application/json"})
    assert response.status_code == 400  # an empty body has no location_ids
    bad = api.http.post(ORDERS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "EXPECTED_JSON_BODY"
    unknown = api.call("GET", "/v2/customers/nope", validate=False)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "NOT_FOUND"


def test_unknown_fields_are_silently_ignored(api: Api, sandbox: SquareSandbox) -> None:
    # square-ruby-sdk #28: `order` instead of `sort_order` falls back to the default (DESC).
    body = {
        "location_ids": location_ids(sandbox),
        "query": {"sort": {"sort_field": "UPDATED_AT", "order": "ASC"}},
    }
    stamps = [parse_rfc3339_us(o["updated_at"]) for o in api.ok("POST", ORDERS, body)["orders"]]
    assert stamps == sorted(stamps, reverse=True)


# ---- orders: cursors -----------------------------------------------------------------------------


def test_cursor_is_bound_to_the_original_body(api: Api, sandbox: SquareSandbox) -> None:
    body = updated_asc(sandbox)
    first = api.ok("POST", ORDERS, body)
    cursor = first["cursor"]
    changed = {**body, "limit": 50, "cursor": cursor}
    assert api.error("POST", ORDERS, changed, 400, "INVALID_CURSOR")["field"] == "cursor"
    assert api.error("POST", CATALOG, {"cursor": cursor}, 400, "INVALID_CURSOR")["field"] == "cursor"
    api.error("POST", ORDERS, {**body, "cursor": "made-up"}, 400, "INVALID_CURSOR")
    # The same cursor can be retried (e.g. after a failed read) and gives the same page.
    again = api.ok("POST", ORDERS, {**body, "cursor": cursor})
    assert again["orders"] == api.ok("POST", ORDERS, {**body, "cursor": cursor})["orders"]


def test_cursor_expires_after_ttl_of_non_use() -> None:
    clock = ManualClock(ANCHOR)
    sandbox = SquareSandbox(SquareSandboxConfig(orders=300, cursor_ttl_seconds=600), clock=clock)
    with serve_in_thread(create_app(sandbox)) as served:
        api = Api(served.url)
        body = updated_asc(sandbox)
        cursor = api.ok("POST", ORDERS, body)["cursor"]
        for _ in range(3):  # each use extends the life: 1,500 s in all, 500 s between uses
            clock.advance(500)
            api.ok("POST", ORDERS, {**body, "cursor": cursor})
        clock.advance(599)
        api.ok("POST", ORDERS, {**body, "cursor": cursor})
        clock.advance(601)
        error = api.error("POST", ORDERS, {**body, "cursor": cursor}, 400, "INVALID_CURSOR")
        assert error == {
            "category": "INVALID_REQUEST_ERROR",
            "code": "INVALID_CURSOR",
            "detail": "The cursor is invalid or has expired.",
            "field": "cursor",
        }
        # Restarting from page 1 works.
        assert api.ok("POST", ORDERS, body)["cursor"]
        sandbox.expire_cursors()
        assert len(sandbox.cursors) == 0


def test_missing_end_at_is_the_time_of_the_first_request(api: Api, sandbox: SquareSandbox) -> None:
    body = updated_asc(sandbox, start_at="2000-01-01T00:00:00Z")
    body["limit"] = 50
    pages = api.pages(ORDERS, body)
    seen = [o["id"] for o in next(pages)["orders"]]
    added = sandbox.add_orders(5)
    updated = sandbox.update_orders(ids=seen[:3])
    seen += [o["id"] for page in pages for o in page["orders"]]
    assert len(seen) == len(set(seen)) == 300
    assert not set(added) & set(seen)
    # A new chain sees the new orders, and the updated ones at the end of the ASC order.
    fresh = [o["id"] for o in api.all_orders(body)]
    assert set(added) <= set(fresh) and set(fresh[-8:]) == set(added) | set(updated)


# ---- orders: mutations ---------------------------------------------------------------------------


def test_update_orders_bumps_version_and_updated_at(api: Api, sandbox: SquareSandbox) -> None:
    before = {o["id"]: o for o in sandbox.iter_orders()}
    since = now_to_ms(sandbox)
    ids = sandbox.update_orders(count=10)
    assert len(ids) == 10
    changed = {o["id"]: o for o in api.all_orders(updated_asc(sandbox, start_at=iso(since)))}
    assert set(changed) == set(ids)
    for order_id, order in changed.items():
        old = before[order_id]
        assert order["version"] == old["version"] + 1
        assert ts(order["updated_at"]) >= since
        assert order["line_items"] != old["line_items"] or order["state"] != old["state"]
        assert order["created_at"] == old["created_at"]
    with pytest.raises(KeyError):
        sandbox.update_orders(ids=["no-such-order"])


def test_add_orders_at_a_location(api: Api, sandbox: SquareSandbox) -> None:
    active = [loc["id"] for loc in sandbox.locations() if loc["status"] == "ACTIVE"]
    ids = sandbox.add_orders(4, location_id=active[0])
    assert sandbox.order_count() == 304
    orders = {o["id"]: o for o in api.all_orders({"location_ids": active[:1], "limit": 500})}
    assert set(ids) <= set(orders) and all(orders[i]["version"] == 1 for i in ids)
    spread = sandbox.add_orders(30)
    assert {sandbox.order(i)["location_id"] for i in spread} <= set(active)


def test_late_offline_orders_are_invisible_until_uploaded(api: Api, sandbox: SquareSandbox) -> None:
    watermark = now_to_ms(sandbox)
    lookback = updated_asc(sandbox, start_at=iso(watermark - timedelta(hours=72)))
    lookback["limit"] = 10
    chain = api.pages(ORDERS, lookback)
    first = next(chain)
    late = sandbox.add_late_orders(6, hours_late=48)
    rest = [o["id"] for o in first["orders"]] + [o["id"] for page in chain for o in page.get("orders", [])]
    assert not set(late) & set(rest)  # the chain started before the upload

    for order_id in late:
        order = sandbox.order(order_id)
        age = watermark - ts(order["updated_at"])
        assert timedelta(hours=47) < age < timedelta(hours=49)
        assert order["state"] == "COMPLETED"
    # An incremental sync from the watermark misses them; a 72 h lookback finds them.
    assert not {o["id"] for o in api.all_orders(updated_asc(sandbox, start_at=iso(watermark)))} & set(late)
    assert set(late) <= {o["id"] for o in api.all_orders(lookback)}
    assert sandbox.order_count() == 306


def test_corrupted_orders_are_served_malformed(api: Api, sandbox: SquareSandbox) -> None:
    a, b, c = [o["id"] for o in sandbox.iter_orders()][:3]
    sandbox.corrupt_order(a, "id", None)
    sandbox.corrupt_order(b, "updated_at", "not-a-date")
    sandbox.corrupt_order(c, "version", "four")
    sandbox.corrupt_order(c, "line_items.0.quantity", "lots")
    orders = [
        o for page in api.pages(ORDERS, {**updated_asc(sandbox), "limit": 1000}) for o in page["orders"]
    ]
    assert len(orders) == 300
    assert sum("id" not in o for o in orders) == 1
    by_id = {o["id"]: o for o in orders if "id" in o}
    assert by_id[b]["updated_at"] == "not-a-date"
    assert by_id[c]["version"] == "four" and by_id[c]["line_items"][0]["quantity"] == "lots"
    sandbox.update_orders(ids=[b])
    assert sandbox.order(b)["updated_at"] != "not-a-date"


# ---- catalog -----------------------------------------------------------------------------------


def all_objects(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for page in api.pages(CATALOG, body) for o in page.get("objects", [])]


def test_catalog_defaults_to_top_level_types_with_nested_variations(api: Api, sandbox: SquareSandbox) -> None:
    objects = all_objects(api, {"limit": 1000})
    assert {o["type"] for o in objects} == {"ITEM", "CATEGORY"}
    assert len(objects) == 25
    items = [o for o in objects if o["type"] == "ITEM"]
    assert all(len(i["item_data"]["variations"]) == 2 for i in items)
    for item in items:
        for variation in item["item_data"]["variations"]:
            assert variation["type"] == "ITEM_VARIATION"
            assert variation["item_variation_data"]["item_id"] == item["id"]
    for obj in objects:
        assert obj["version"] == parse_rfc3339_us(obj["updated_at"]) // 1000


def test_catalog_with_variations_pages_in_a_shuffled_but_stable_order(
    api: Api, sandbox: SquareSandbox
) -> None:
    body = {"object_types": ["ITEM", "ITEM_VARIATION", "CATEGORY"], "limit": 7}
    pages = list(api.pages(CATALOG, body))
    assert all(len(p["objects"]) == 7 for p in pages[:-1]) and "cursor" not in pages[-1]
    objects = [o for p in pages for o in p["objects"]]
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids)) == 65
    assert {o["id"] for o in sandbox.catalog_objects()} == set(ids)
    assert ids != sorted(ids)
    stamps = [o["version"] for o in objects]
    assert stamps != sorted(stamps) and stamps != sorted(stamps, reverse=True)
    assert ids == [o["id"] for o in all_objects(api, body)]
    assert all(p["latest_time"] == pages[0]["latest_time"] for p in pages)
    stamps_text = [o["updated_at"] for o in objects]
    assert any(len(s) == 20 for s in stamps_text) and any(len(s) == 24 for s in stamps_text)


def test_catalog_limit_range(api: Api) -> None:
    assert api.error("POST", CATALOG, {"limit": 1001}, 400, "VALUE_TOO_HIGH")["field"] == "limit"
    api.error("POST", CATALOG, {"limit": 0}, 400, "VALUE_TOO_LOW")
    # Airbyte PR #53695: object_types sent as a string.
    api.error("POST", CATALOG, {"object_types": "ITEM"}, 400, "EXPECTED_ARRAY")
    api.error("POST", CATALOG, {"object_types": ["WIDGET"]}, 400, "INVALID_ENUM_VALUE")
    api.error(
        "POST",
        CATALOG,
        {"include_deleted_objects": True, "include_category_path_to_root": True},
        400,
        "CONFLICTING_PARAMETERS",
    )


@pytest.mark.parametrize("tombstones", ["minimal", "full"])
def test_deleting_an_item_leaves_tombstones_for_it_and_its_variations(tombstones: Tombstones) -> None:
    sandbox = SquareSandbox(SquareSandboxConfig(orders=0, tombstones=tombstones))
    with serve_in_thread(create_app(sandbox)) as served:
        api = Api(served.url)
        item = next(o for o in sandbox.catalog_objects() if o["type"] == "ITEM")
        before = now_to_ms(sandbox)
        deleted = sandbox.delete_catalog_object(item["id"])
        variation_ids = [v["id"] for v in item["item_data"]["variations"]]
        assert deleted == [item["id"], *variation_ids]
        types = ["ITEM", "ITEM_VARIATION", "CATEGORY"]

        live = all_objects(api, {"object_types": types, "limit": 1000})
        assert not {o["id"] for o in live} & set(deleted)
        with_deleted = {
            o["id"]: o for o in all_objects(api, {"object_types": types, "include_deleted_objects": True})
        }
        for object_id in deleted:
            tomb = with_deleted[object_id]
            assert tomb["is_deleted"] is True
            assert ts(tomb["updated_at"]) >= before
            assert tomb["version"] == parse_rfc3339_us(tomb["updated_at"]) // 1000
        served_item, served_variation = with_deleted[item["id"]], with_deleted[variation_ids[0]]
        if tombstones == "minimal":
            # Square's own example of a deleted variation: no name, SKU or price, just its item.
            common = {"updated_at": served_variation["updated_at"], "version": served_variation["version"]}
            assert served_variation == {
                "type": "ITEM_VARIATION",
                "id": variation_ids[0],
                **common,
                "is_deleted": True,
                "item_variation_data": {"item_id": item["id"]},
            }
            assert set(served_item) == {"type", "id", "updated_at", "version", "is_deleted"}
        else:
            assert served_item["item_data"]["name"] == item["item_data"]["name"]
            assert len(served_item["item_data"]["variations"]) == 2
            assert (
                served_variation["item_variation_data"]["sku"]
                == item["item_data"]["variations"][0]["item_variation_data"]["sku"]
            )
        # The truth keeps what the objects looked like when they were deleted, in either mode.
        last_live = {o["id"]: o for o in sandbox.catalog_objects(last_live_data=True)}
        assert last_live[item["id"]]["item_data"]["name"] == item["item_data"]["name"]
        assert last_live[item["id"]]["is_deleted"] is True
        # Forum t/23637: with begin_time, deleted objects come back even without include_deleted_objects.
        since = all_objects(api, {"object_types": types, "begin_time": iso(before - timedelta(seconds=1))})
        assert {o["id"] for o in since} == set(deleted)
        assert sandbox.delete_catalog_object(item["id"]) == []


def test_deleting_a_variation_removes_it_from_its_item(api: Api, sandbox: SquareSandbox) -> None:
    item = next(o for o in sandbox.catalog_objects() if o["type"] == "ITEM")
    variation = item["item_data"]["variations"][0]["id"]
    assert sandbox.delete_catalog_object(variation) == [variation]
    served = next(o for o in all_objects(api, {"object_types": ["ITEM"]}) if o["id"] == item["id"])
    assert [v["id"] for v in served["item_data"]["variations"]] == [item["item_data"]["variations"][1]["id"]]


def test_begin_time_is_exclusive(api: Api, sandbox: SquareSandbox) -> None:
    types = ["ITEM", "ITEM_VARIATION", "CATEGORY"]
    newest = max(sandbox.catalog_objects(), key=lambda o: o["version"])
    at = datetime.fromtimestamp(newest["version"] / 1000, tz=UTC)
    assert newest["id"] not in {
        o["id"] for o in all_objects(api, {"object_types": types, "begin_time": iso(at)})
    }
    just_before = iso(at - timedelta(milliseconds=1))
    assert newest["id"] in {
        o["id"] for o in all_objects(api, {"object_types": types, "begin_time": just_before})
    }


def test_catalog_updates_bump_version(api: Api, sandbox: SquareSandbox) -> None:
    variation = next(o for o in sandbox.catalog_objects() if o["type"] == "ITEM_VARIATION")
    before = now_to_ms(sandbox) - timedelta(milliseconds=1)
    sandbox.update_catalog_object(variation["id"], name="Huge", price_amount=999)
    added = sandbox.add_catalog_item("Seasonal Cider", variations=2)
    changed = {
        o["id"]: o
        for o in all_objects(api, {"object_types": ["ITEM_VARIATION", "ITEM"], "begin_time": iso(before)})
    }
    assert set(changed) == {variation["id"], *added}
    new = changed[variation["id"]]
    assert new["version"] > variation["version"]
    assert new["item_variation_data"]["name"] == "Huge"
    assert new["item_variation_data"]["price_money"] == {"amount": 999, "currency": "USD"}
    assert len(changed[added[0]]["item_data"]["variations"]) == 2
    with pytest.raises(ValueError):
        sandbox.update_catalog_object(variation["id"], colour="red")


def test_related_objects(api: Api, sandbox: SquareSandbox) -> None:
    page = api.ok(
        "POST", CATALOG, {"object_types": ["ITEM_VARIATION"], "include_related_objects": True, "limit": 5}
    )
    parents = {o["item_variation_data"]["item_id"] for o in page["objects"]}
    assert {o["id"] for o in page["related_objects"]} == parents
    assert "related_objects" not in api.ok("POST", CATALOG, {"object_types": ["ITEM_VARIATION"], "limit": 5})


# ---- inventory -----------------------------------------------------------------------------------


def test_inventory_counts_sorted_newest_first_and_filtered(api: Api, sandbox: SquareSandbox) -> None:
    pages = list(api.pages(INVENTORY, {"limit": 10}))
    counts = [c for p in pages for c in p["counts"]]
    assert counts == sandbox.inventory_counts()
    stamps = [parse_rfc3339_us(c["calculated_at"]) for c in counts]
    assert stamps == sorted(stamps, reverse=True)
    keys = {(c["catalog_object_id"], c["location_id"], c["state"]) for c in counts}
    assert len(keys) == len(counts)
    variations = [o["id"] for o in sandbox.catalog_objects() if o["type"] == "ITEM_VARIATION"]
    assert len({(k[0], k[1]) for k in keys}) < len(variations) * len(location_ids(sandbox))

    loc = location_ids(sandbox)[0]
    only = [
        c for p in api.pages(INVENTORY, {"location_ids": [loc], "states": ["IN_STOCK"]}) for c in p["counts"]
    ]
    assert only and all(c["location_id"] == loc and c["state"] == "IN_STOCK" for c in only)
    since = now_to_ms(sandbox)
    sandbox.set_inventory_count(variations[0], loc, "IN_STOCK", "12.5")
    fresh = api.ok("POST", INVENTORY, {"updated_after": iso(since - timedelta(milliseconds=1))})["counts"]
    assert [(c["catalog_object_id"], c["quantity"]) for c in fresh] == [(variations[0], "12.5")]
    assert api.ok("POST", INVENTORY, {"updated_after": fresh[0]["calculated_at"]}) == {}
    api.error("POST", INVENTORY, {"limit": 0}, 400, "VALUE_TOO_LOW")
    api.error("POST", INVENTORY, {"limit": 1001}, 400, "VALUE_TOO_HIGH")
    api.error("POST", INVENTORY, {"states": ["MISSING"]}, 400, "INVALID_ENUM_VALUE")
    # The deprecated alias answers the same.
    alias = api.ok("POST", "/v2/inventory/batch-retrieve-counts", {"limit": 10})["counts"]
    assert alias == api.ok("POST", INVENTORY, {"limit": 10})["counts"]


# ---- faults --------------------------------------------------------------------------------------


def test_rate_limit_with_and_without_retry_after(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("rate_limit", endpoint="orders_search", retry_after=2)
    sandbox.faults.inject("rate_limit", endpoint="orders_search")
    body = {"location_ids": location_ids(sandbox), "limit": 5}
    first = api.call("POST", ORDERS, body)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json() == {
        "errors": [
            {
                "category": "RATE_LIMIT_ERROR",
                "code": "RATE_LIMITED",
                "detail": "Too many requests. Slow down.",
            }
        ]
    }
    second = api.call("POST", ORDERS, body)
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert api.call("POST", ORDERS, body).status_code == 200
    assert api.call("GET", LOCATIONS).status_code == 200
    assert sandbox.stats.faults_fired["rate_limit"] == 2
    assert sandbox.stats.calls["orders_search"] == 3 and sandbox.stats.calls["locations"] == 1


@pytest.mark.parametrize(
    ("kind", "status", "code", "category"),
    [
        ("server_error", None, "INTERNAL_SERVER_ERROR", "API_ERROR"),
        ("server_error", 503, "SERVICE_UNAVAILABLE", "API_ERROR"),
        ("unauthorized", None, "UNAUTHORIZED", "AUTHENTICATION_ERROR"),
        ("forbidden", None, "INSUFFICIENT_SCOPES", "AUTHENTICATION_ERROR"),
    ],
)
def test_error_faults(
    api: Api, sandbox: SquareSandbox, kind: str, status: int | None, code: str, category: str
) -> None:
    sandbox.faults.inject(kind, endpoint="catalog_search", status=status)
    response = api.call("POST", CATALOG, {})
    expected_status = status or {"server_error": 500, "unauthorized": 401, "forbidden": 403}[kind]
    assert response.status_code == expected_status
    error = response.json()["errors"][0]
    assert (error["code"], error["category"]) == (code, category)
    assert api.call("POST", CATALOG, {}).status_code == 200


def test_expired_token_fault(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("unauthorized", code="ACCESS_TOKEN_EXPIRED")
    assert (
        api.error("GET", LOCATIONS, None, 401, "ACCESS_TOKEN_EXPIRED")["category"] == "AUTHENTICATION_ERROR"
    )


def test_slow_fault_delays_the_answer(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("slow", endpoint="locations", delay_seconds=0.3)
    started = time.perf_counter()
    assert api.call("GET", LOCATIONS).status_code == 200
    assert time.perf_counter() - started >= 0.3
    sandbox.faults.inject("slow", endpoint="locations", delay_seconds=0.6)
    with pytest.raises(httpx.ReadTimeout):
        api.http.get(LOCATIONS, timeout=0.2)


def test_truncated_body_is_incomplete_for_the_client(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("truncated", endpoint="orders_search")
    body = {"location_ids": location_ids(sandbox)}
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
        api.http.post(ORDERS, json=body)
    # Streaming readers see it too: fewer bytes than Content-Length, then an error.
    sandbox.faults.inject("truncated", endpoint="orders_search")
    received = b""
    with pytest.raises(httpx.RemoteProtocolError), api.http.stream("POST", ORDERS, json=body) as response:
        assert response.status_code == 200
        expected = int(response.headers["Content-Length"])
        for chunk in response.iter_bytes():
            received += chunk
    assert 0 < len(received) < expected
    with pytest.raises(json.JSONDecodeError):
        json.loads(received)
    assert api.call("POST", ORDERS, body).status_code == 200


def test_dropped_connection(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("drop_connection", endpoint="inventory_counts")
    with pytest.raises(httpx.RemoteProtocolError):
        api.http.post(INVENTORY, json={})
    assert api.call("POST", INVENTORY, {}).status_code == 200
    assert sandbox.stats.faults_fired["drop_connection"] == 1


def test_expired_cursor_fault_hits_the_next_cursor_request(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("expired_cursor", endpoint="orders_search")
    body = updated_asc(sandbox)
    first = api.ok("POST", ORDERS, body)  # no cursor: passes
    error = api.error("POST", ORDERS, {**body, "cursor": first["cursor"]}, 400, "INVALID_CURSOR")
    assert error["field"] == "cursor"
    # The cursor is really gone; a restart pages through everything.
    api.error("POST", ORDERS, {**body, "cursor": first["cursor"]}, 400, "INVALID_CURSOR")
    assert len(api.all_orders(body)) == 300


def test_after_calls_times_and_clear(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("server_error", endpoint="locations", after_calls=2, times=2)
    statuses = [api.call("GET", LOCATIONS).status_code for _ in range(5)]
    assert statuses == [200, 200, 500, 500, 200]
    sandbox.faults.inject("rate_limit", times=None)
    assert api.call("POST", CATALOG, {}).status_code == 429
    assert api.call("POST", INVENTORY, {}).status_code == 429
    sandbox.faults.clear()
    assert api.call("POST", CATALOG, {}).status_code == 200
    assert sandbox.stats.requests == 8
    with pytest.raises(ValueError):
        sandbox.faults.inject("meteor")


# ---- determinism and scale ---------------------------------------------------------------------


def test_same_seed_same_data_different_seed_different_data() -> None:
    anchor = datetime(2024, 5, 1, 12, tzinfo=UTC)

    def snapshot(seed: int) -> tuple[Any, ...]:
        sb = SquareSandbox(SquareSandboxConfig(seed=seed, orders=150, now=anchor))
        return sb.locations(), sb.catalog_objects(), list(sb.iter_orders()), sb.inventory_counts()

    assert snapshot(11) == snapshot(11)
    assert snapshot(11)[2] != snapshot(12)[2]
    orders = snapshot(11)[2]
    assert max(ts(o["updated_at"]) for o in orders) <= anchor
    assert min(ts(o["created_at"]) for o in orders) >= anchor - timedelta(days=30)


def test_served_pages_are_byte_identical_for_the_same_seed() -> None:
    anchor = datetime(2024, 5, 1, 12, tzinfo=UTC)
    bodies = []
    for _ in range(2):
        sandbox = SquareSandbox(SquareSandboxConfig(seed=5, orders=100, now=anchor))
        with serve_in_thread(create_app(sandbox)) as served:
            client = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"})
            bodies.append(
                client.post(ORDERS, json={"location_ids": location_ids(sandbox), "limit": 40}).content.split(
                    b',"cursor"'
                )[0]
            )
            bodies.append(client.post(CATALOG, json={"limit": 1000}).content)
    assert bodies[:2] == bodies[2:]


def test_a_large_sandbox_is_cheap() -> None:
    # Speed is the benchmarks' business (a timed assertion here would race the machine's load).
    sandbox = SquareSandbox(SquareSandboxConfig(orders=200_000, locations=12))
    assert sum(col.nbytes for col in sandbox.orders._cols.values()) < 200_000 * 60
    rows = np.arange(100_000, 101_000)
    texts = sandbox.orders.render_json(rows)
    assert json.loads("[" + ",".join(texts) + "]") == sandbox.orders.render(rows)
    assert sandbox.order_count() == 200_000


# ---- where the API notes leave Square open: switches for each answer ---------------------------

CATALOG_TYPES = ["ITEM", "ITEM_VARIATION", "CATEGORY"]
DATA_KEY = {"ITEM": "item_data", "ITEM_VARIATION": "item_variation_data", "CATEGORY": "category_data"}


def count_key(count: dict[str, Any]) -> tuple[str, str, str]:
    return count["catalog_object_id"], count["location_id"], count["state"]


def test_switches_reject_unknown_answers_naming_the_field() -> None:
    def unknown(switch: str, answer: str) -> dict[str, Any]:
        # A value outside the switch's Literal, as an untyped caller (a CLI, a config file) could pass.
        return {switch: answer}

    with pytest.raises(
        ValueError, match=r"SquareSandboxConfig.tombstones must be one of \('minimal', 'full'\)"
    ):
        SquareSandboxConfig(**unknown("tombstones", "none"))
    with pytest.raises(ValueError, match="result_sets"):
        SquareSandboxConfig(**unknown("result_sets", "fixed"))
    with pytest.raises(ValueError, match="catalog_order"):
        SquareSandboxConfig(**unknown("catalog_order", "random"))
    assert (SquareSandboxConfig().tombstones, SquareSandboxConfig().result_sets) == ("minimal", "pinned")


@pytest.mark.parametrize("result_sets", ["pinned", "live"])
def test_catalog_results_pinned_or_live_while_an_object_is_edited(result_sets: ResultSets) -> None:
    config = SquareSandboxConfig(orders=0, result_sets=result_sets, catalog_order="updated_at")
    clock = ManualClock(ANCHOR)
    sandbox = SquareSandbox(config, clock=clock)
    before = [o["id"] for o in sorted(sandbox.catalog_objects(), key=lambda o: (o["version"], o["id"]))]
    edited = before[2]  # on page 1

    def edit() -> None:
        clock.advance(60)
        sandbox.update_catalog_object(edited, name="Edited mid-run")

    hook = sandbox.after_page("catalog_search", 1, edit)
    with serve_in_thread(create_app(sandbox)) as served:
        pages = list(Api(served.url).pages(CATALOG, {"object_types": CATALOG_TYPES, "limit": 7}))
    hook.assert_ran()
    served_ids = [o["id"] for page in pages for o in page["objects"]]
    if result_sets == "pinned":
        assert served_ids == before
        assert {p["latest_time"] for p in pages} == {pages[0]["latest_time"]}
    else:
        # The edit moved the object to the end of the order: everything after it slid back one
        # place, so the first object of page 2 slid onto page 1 and was never served at all.
        assert served_ids == before[:7] + before[8:] + [edited]
        last = pages[-1]["objects"][-1]
        assert last[DATA_KEY[last["type"]]]["name"] == "Edited mid-run"
        assert ts(pages[-1]["latest_time"]) == ANCHOR + timedelta(seconds=60)
        assert ts(pages[0]["latest_time"]) < ANCHOR + timedelta(seconds=60)


def test_catalog_order_shuffled_is_the_default_and_updated_at_sorts_oldest_first() -> None:
    sandbox = SquareSandbox(SquareSandboxConfig(orders=0, catalog_order="updated_at"))
    with serve_in_thread(create_app(sandbox)) as served:
        objects = all_objects(Api(served.url), {"object_types": CATALOG_TYPES, "limit": 9})
    keys = [(o["version"], o["id"]) for o in objects]
    assert keys == sorted(keys) and len(keys) == len(sandbox.catalog_objects())


@pytest.mark.parametrize("result_sets", ["pinned", "live"])
def test_inventory_results_pinned_or_live_while_a_count_changes(result_sets: ResultSets) -> None:
    clock = ManualClock(ANCHOR)
    sandbox = SquareSandbox(SquareSandboxConfig(orders=0, result_sets=result_sets), clock=clock)
    before = [count_key(c) for c in sandbox.inventory_counts()]  # newest first
    changed = before[25]  # on page 3

    def edit() -> None:
        clock.advance(60)
        sandbox.set_inventory_count(*changed, "999")

    hook = sandbox.after_page("inventory_counts", 1, edit)
    with serve_in_thread(create_app(sandbox)) as served:
        counts = [
            c for page in Api(served.url).pages(INVENTORY, {"limit": 10}) for c in page.get("counts", [])
        ]
    hook.assert_ran()
    served_keys = [count_key(c) for c in counts]
    if result_sets == "pinned":
        assert served_keys == before
        assert next(c for c in counts if count_key(c) == changed)["quantity"] == "999"  # read when served
    else:
        # The new count jumped to the front, which was already served: it is never seen, and the
        # counts after it moved one place on, so the last of page 1 comes again on page 2.
        assert served_keys == before[:10] + before[9:25] + before[26:]
    assert [count_key(c) for c in sandbox.inventory_counts()][0] == changed


@pytest.mark.parametrize("result_sets", ["pinned", "live"])
def test_order_results_pinned_or_live_while_orders_change(result_sets: ResultSets) -> None:
    config = SquareSandboxConfig(orders=300, locations=4, result_sets=result_sets)
    clock = ManualClock(ANCHOR)
    sandbox = SquareSandbox(config, clock=clock)
    with serve_in_thread(create_app(sandbox)) as served:
        api = Api(served.url)
        body = updated_asc(sandbox, start_at="2000-01-01T00:00:00Z", end_at=iso(now_to_ms(sandbox)))
        body["limit"] = 50
        before = [o["id"] for o in api.all_orders(body)]
        late: list[str] = []

        def edit() -> None:
            clock.advance(1)
            sandbox.update_orders(ids=[before[10]])  # now updated after end_at
            late.extend(sandbox.add_late_orders(3, hours_late=48))  # uploaded now, updated 48 h ago

        hook = sandbox.after_page("orders_search", 1, edit)
        served_ids = [o["id"] for o in api.all_orders(body)]
        hook.assert_ran()
        after = [o["id"] for o in api.all_orders(body)]
    if result_sets == "pinned":
        assert served_ids == before and not set(late) & set(served_ids)
    else:
        # The updated order left the range and the rest slid back one place: the first order of
        # page 2 was never served. The late uploads appear where their updated_at sorts them.
        assert before[10] not in after and set(late) <= set(after)
        assert served_ids == before[:50] + after[50:]
        assert before[50] not in served_ids


def test_page_hooks_run_after_a_page_is_rendered_and_before_it_is_sent() -> None:
    clock = ManualClock(ANCHOR)
    sandbox = SquareSandbox(SquareSandboxConfig(orders=0), clock=clock)
    body = {"object_types": ["ITEM_VARIATION"], "limit": 5}
    variation_ids = sorted(o["id"] for o in sandbox.catalog_objects() if o["type"] == "ITEM_VARIATION")

    def edit() -> None:
        for variation_id in variation_ids:
            sandbox.update_catalog_object(variation_id, name="After page 2")
        clock.advance(120)  # within the cursor's 300 s life

    hook = sandbox.after_page("catalog_search", 2, edit)
    with serve_in_thread(create_app(sandbox)) as served:
        api = Api(served.url)
        pages = []
        for page in api.pages(CATALOG, body):
            pages.append(page)
            # The hook has run by the time the client holds page 2; not before.
            assert hook.ran.is_set() == (len(pages) >= 2)
        names = [[o["item_variation_data"]["name"] for o in page["objects"]] for page in pages]
        assert "After page 2" not in names[0] + names[1]
        assert {name for page in names[2:] for name in page} == {"After page 2"}
        assert sandbox.now_ms() == int((ANCHOR + timedelta(seconds=120)).timestamp() * 1000)
        assert hook.runs == 1  # once, unless repeated

        repeated = sandbox.after_page("locations", 2, lambda: None, repeat=True)
        for _ in range(7):
            api.ok("GET", LOCATIONS)
        assert repeated.runs == 3  # after pages 2, 4 and 6

        # A failing callback does not cost the client its page; the test sees the error.
        broken = sandbox.after_page("locations", 1, lambda: 1 / 0)
        assert api.call("GET", LOCATIONS).status_code == 200
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            broken.assert_ran()
        # Faulted answers are not pages.
        sandbox.faults.inject("server_error", endpoint="inventory_counts")
        counted = sandbox.after_page("inventory_counts", 1, lambda: None)
        assert api.call("POST", INVENTORY, {}).status_code == 500 and not counted.ran.is_set()
        assert api.call("POST", INVENTORY, {}).status_code == 200 and counted.ran.is_set()
    with pytest.raises(ValueError, match="unknown endpoint 'payments'"):
        sandbox.after_page("payments", 1, lambda: None)
    with pytest.raises(ValueError, match="page must be 1 or more"):
        sandbox.after_page("orders_search", 0, lambda: None)
    with pytest.raises(AssertionError, match="never served"):
        sandbox.after_page("orders_search", 1, lambda: None).assert_ran()


def test_random_edits_change_what_each_search_serves() -> None:
    clock = ManualClock(ANCHOR)
    sandbox = SquareSandbox(SquareSandboxConfig(orders=50), clock=clock)
    catalog, counts = sandbox.catalog_objects(), sandbox.inventory_counts()
    clock.advance(1)
    variation = sandbox.random_edit("catalog_search")
    assert (
        next(o for o in sandbox.catalog_objects() if o["id"] == variation)["version"]
        > next(o for o in catalog if o["id"] == variation)["version"]
    )
    sandbox.random_edit("inventory_counts")
    assert sandbox.inventory_counts()[0] not in counts
    order_id = sandbox.random_edit("orders_search")
    assert ts(sandbox.order(order_id)["updated_at"]) == ANCHOR + timedelta(seconds=1)
    with pytest.raises(ValueError, match="no random edit for 'locations'"):
        sandbox.random_edit("locations")


def test_cut_json_fault_is_complete_http_with_a_body_cut_short(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.faults.inject("cut_json", endpoint="orders_search")
    response = api.http.post(ORDERS, json={"location_ids": location_ids(sandbox)})
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert api.call("POST", ORDERS, {"location_ids": location_ids(sandbox)}).status_code == 200


def test_pinned_result_sets_beyond_the_memory_budget_are_forgotten(api: Api, sandbox: SquareSandbox) -> None:
    sandbox.cursors.max_retained_items = 700  # each of these chains holds all 300 orders
    body = updated_asc(sandbox)
    cursors = [api.ok("POST", ORDERS, {**body, "limit": limit})["cursor"] for limit in (10, 20, 30)]
    # The least recently used chain went; the others still page.
    api.error("POST", ORDERS, {**body, "limit": 10, "cursor": cursors[0]}, 400, "INVALID_CURSOR")
    api.ok("POST", ORDERS, {**body, "limit": 20, "cursor": cursors[1]})
    api.ok("POST", ORDERS, {**body, "limit": 30, "cursor": cursors[2]})


def test_live_result_sets_hold_no_rows() -> None:
    sandbox = SquareSandbox(SquareSandboxConfig(orders=300, locations=4, result_sets="live"))
    sandbox.cursors.max_retained_items = 1
    with serve_in_thread(create_app(sandbox)) as served:
        api = Api(served.url)
        body = {**updated_asc(sandbox), "limit": 10}
        cursors = [api.ok("POST", ORDERS, body)["cursor"] for _ in range(3)]
        for cursor in cursors:
            api.ok("POST", ORDERS, {**body, "cursor": cursor})


def test_cli_options_choose_the_answers(tmp_path) -> None:
    from logikal_square_sync_sandbox.__main__ import parse_args, square_sandbox

    defaults = square_sandbox(parse_args(["--orders", "10"]))
    assert (defaults.config.tombstones, defaults.config.result_sets, defaults.config.catalog_order) == (
        "minimal",
        "pinned",
        "shuffled",
    )
    options = ["--orders", "10", "--tombstones", "full", "--result-sets", "live"]
    chosen = square_sandbox(
        parse_args([*options, "--catalog-order", "updated_at", "--edit-every-pages", "2"])
    )
    assert (chosen.config.tombstones, chosen.config.result_sets, chosen.config.catalog_order) == (
        "full",
        "live",
        "updated_at",
    )
    before = chosen.catalog_objects()
    for _ in range(2):
        chosen.hooks.served("catalog_search")  # as the app does after each full page
    assert chosen.catalog_objects() != before  # edited after page 2
    with pytest.raises(SystemExit):
        parse_args(["--tombstones", "some"])


def test_the_cli_serves_the_chosen_answers() -> None:
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "logikal_square_sync_sandbox",
        "--square-port",
        "0",
        "--logikal-port",
        "-1",
    ]
    options = ["--orders", "20", "--result-sets", "live", "--catalog-order", "updated_at"]
    process = subprocess.Popen(
        [*command, *options, "--edit-every-pages", "1"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("READY "), line
        ready = json.loads(line.removeprefix("READY "))
        api = Api(ready["square_base_url"], ready["square_access_token"])
        first = api.ok("POST", CATALOG, {"object_types": CATALOG_TYPES, "limit": 1000})["objects"]
        keys = [(o["version"], o["id"]) for o in first]
        assert keys == sorted(keys)
        # The edit after page 1 moved a variation to the end of the order.
        second = api.ok("POST", CATALOG, {"object_types": CATALOG_TYPES, "limit": 1000})["objects"]
        assert second[-1]["version"] > first[-1]["version"]
    finally:
        process.terminate()
        process.wait(timeout=30)

"""The retrying HTTP client against a real local server that misbehaves on cue."""

import json
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from logikal_square_sync.common.http import RetriesExhausted, RetryingClient, RetryPolicy
from logikal_square_sync_sandbox.server import serve_in_thread

# Each test queues what the server answers next; an empty queue answers 200 {"ok": true}.
script: list[str] = []


async def endpoint(request: Request) -> Response:
    action = script.pop(0) if script else "ok"
    if action == "ok":
        return JSONResponse({"ok": True})
    if action.startswith("status:"):
        _, status, *retry_after = action.split(":")
        headers = {"Retry-After": retry_after[0]} if retry_after else {}
        return JSONResponse({"errors": [{"code": "X"}]}, status_code=int(status), headers=headers)
    if action == "short-json":
        return Response(b'{"ok": tr', media_type="application/json")
    if action == "cut":

        async def cut_body(scope, receive, send) -> None:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
            )
            await send({"type": "http.response.body", "body": b'{"ok":', "more_body": True})
            raise RuntimeError("connection dropped mid-body (intended)")

        return cut_body  # type: ignore[return-value]
    raise AssertionError(action)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/thing", endpoint, methods=["GET"])])
    with serve_in_thread(app) as served:
        yield served.url


@pytest.fixture
def sleeps() -> list[float]:
    script.clear()
    return []


def client(url: str, sleeps: list[float], attempts: int = 4) -> RetryingClient:
    return RetryingClient(url, retry=RetryPolicy(max_attempts=attempts, base_delay=0.01), sleep=sleeps.append)


def test_retries_rate_limits_honouring_retry_after(server_url: str, sleeps: list[float]) -> None:
    script.extend(["status:429:2", "status:429"])
    with client(server_url, sleeps) as http:
        response, body = http.request("GET", "/thing")
    assert body == {"ok": True}
    assert sleeps[0] == 2.0  # Retry-After honoured
    assert 0 <= sleeps[1] <= 0.04  # then exponential backoff with jitter
    assert http.stats.retries == 2 and http.stats.calls == 3


@pytest.mark.parametrize("fault", ["status:500", "status:503", "short-json", "cut"])
def test_retries_transient_faults(server_url: str, sleeps: list[float], fault: str) -> None:
    script.extend([fault, fault])
    with client(server_url, sleeps) as http:
        _, body = http.request("GET", "/thing")
    assert body == {"ok": True}
    assert http.stats.retries == 2


def test_client_errors_are_not_retried(server_url: str, sleeps: list[float]) -> None:
    script.append("status:401")
    with client(server_url, sleeps) as http:
        response, body = http.request("GET", "/thing")
    assert response.status_code == 401 and body is None
    assert http.stats.calls == 1 and sleeps == []


def test_gives_up_with_a_message_naming_the_call(server_url: str, sleeps: list[float]) -> None:
    script.extend(["status:503"] * 5)
    with (
        client(server_url, sleeps, attempts=3) as http,
        pytest.raises(RetriesExhausted, match=r"GET /thing .*3 attempts.*HTTP 503"),
    ):
        http.request("GET", "/thing")


def test_giving_up_keeps_the_last_answer(server_url: str, sleeps: list[float]) -> None:
    script.extend(["status:503"] * 3)
    with client(server_url, sleeps, attempts=3) as http, pytest.raises(RetriesExhausted) as raised:
        http.request("GET", "/thing")
    assert raised.value.status == 503
    assert raised.value.body == b'{"errors":[{"code":"X"}]}'  # the vendor's error code, for its message
    script.extend(["cut"] * 3)
    with client(server_url, sleeps, attempts=3) as http, pytest.raises(RetriesExhausted) as raised:
        http.request("GET", "/thing")
    assert (raised.value.response, raised.value.status, raised.value.body) == (None, None, b"")


def test_an_unreasonable_retry_after_fails_instead_of_hanging(server_url: str, sleeps: list[float]) -> None:
    script.append("status:429:86400")
    with client(server_url, sleeps) as http, pytest.raises(RetriesExhausted, match="asks to wait 86400s"):
        http.request("GET", "/thing")
    assert sleeps == []


@pytest.mark.parametrize("fault", ["short-json", "cut"])
def test_transport_retries_can_be_switched_off_per_request(
    server_url: str, sleeps: list[float], fault: str
) -> None:
    script.extend([fault, "status:503"])
    with client(server_url, sleeps) as http:
        with pytest.raises((httpx.TransportError, json.JSONDecodeError)):
            http.request("GET", "/thing", retry_transport_errors=False)
        assert http.stats.calls == 1 and http.stats.retries == 0 and sleeps == []
        # Answers with a status are still retried: only the lost or cut answers are the caller's.
        _, body = http.request("GET", "/thing", retry_transport_errors=False)
    assert body == {"ok": True} and http.stats.retries == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_retries_can_be_switched_off_per_request(
    server_url: str, sleeps: list[float], status: int
) -> None:
    script.extend([f"status:{status}", "status:429", "ok"])
    with client(server_url, sleeps) as http:
        # The 5xx comes back to the caller as it is: a gateway may send it after the call was applied.
        response, body = http.request("GET", "/thing", retry_server_errors=False)
        assert response.status_code == status and body is None
        assert http.stats.calls == 1 and http.stats.retries == 0 and sleeps == []
        # A rate limit refuses the call before it is applied: still retried.
        _, body = http.request("GET", "/thing", retry_server_errors=False)
    assert body == {"ok": True} and http.stats.retries == 1

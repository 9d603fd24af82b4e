"""HTTP failures name the host and their kind and keep their cause; each API trusts its own CAs.

Real sockets on 127.0.0.1: a TLS server with a self-signed certificate, a closed port, a
server that accepts and never answers, and a host name under `.invalid` (RFC 2606: it never
resolves, no network needed).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from logikal_square_sync.alerts.notifiers import Alert, NotifierError, SlackNotifier
from logikal_square_sync.common.http import CaBundleError, RetriesExhausted, RetryingClient, RetryPolicy
from logikal_square_sync.common.http_errors import FailureKind
from logikal_square_sync.logikal.engine.client.navigation import ROOT, Target
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool
from logikal_square_sync.logikal.resource import LogikalResource, logikal_resource_from_env
from logikal_square_sync_sandbox.logikal import BASE_PATH, LogikalSandbox, create_app
from logikal_square_sync_sandbox.server import free_port, serve_in_thread
from logikal_square_sync_tests.logikal.sandbox_runs import sandbox_config
from logikal_square_sync_tests.tls import SelfSigned, self_signed


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


APP = Starlette(routes=[Route("/thing", ok, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SelfSigned]:
    folder = tmp_path_factory.mktemp("tls")
    # "server": what the TLS servers present; "unrelated": a CA that signed none of them.
    return {name: self_signed(folder, name) for name in ("server", "unrelated")}


@pytest.fixture(scope="module")
def tls_url(certificates: dict[str, SelfSigned]) -> Iterator[str]:
    with serve_in_thread(APP, tls=certificates["server"].files) as served:
        yield served.url


def _client(url: str, sleeps: list[float], attempts: int = 2, **kwargs) -> RetryingClient:
    return RetryingClient(
        url, retry=RetryPolicy(max_attempts=attempts, base_delay=0.01), sleep=sleeps.append, **kwargs
    )


def _fail(url: str, attempts: int = 2, **kwargs) -> tuple[RetriesExhausted, list[float]]:
    sleeps: list[float] = []
    with _client(url, sleeps, attempts, **kwargs) as http, pytest.raises(RetriesExhausted) as raised:
        http.request("GET", "/thing")
    return raised.value, sleeps


def test_an_untrusted_certificate_is_a_tls_error_naming_the_host_and_is_not_retried(tls_url: str) -> None:
    error, sleeps = _fail(tls_url, attempts=4)
    host = tls_url.removeprefix("https://")
    message = str(error)
    assert message.startswith(f"GET /thing failed: TLS: the certificate of {host} is not trusted")
    assert "CERTIFICATE_VERIFY_FAILED: self-signed certificate" in message
    assert (error.kind, error.host) == (FailureKind.TLS, host)
    assert sleeps == []  # a certificate does not change between attempts
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_a_closed_port_is_refused_naming_the_host() -> None:
    port = free_port()
    error, sleeps = _fail(f"http://127.0.0.1:{port}")
    assert f"still failing after 2 attempts (last: connection refused by 127.0.0.1:{port}" in str(error)
    assert error.kind == FailureKind.REFUSED
    assert len(sleeps) == 1  # refused may be a restart: retried
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_an_unresolvable_host_is_a_dns_error() -> None:
    error, _ = _fail("http://logikal.lss-test.invalid:8080", timeout=httpx.Timeout(30.0))
    assert "DNS: the host name of logikal.lss-test.invalid:8080 cannot be resolved" in str(error)
    assert error.kind == FailureKind.DNS
    assert isinstance(error.__cause__, httpx.ConnectError)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_never_answers_is_a_timeout_naming_the_host(silent_server: str) -> None:
    error, _ = _fail(silent_server, timeout=httpx.Timeout(0.3, connect=10.0))
    host = silent_server.removeprefix("http://")
    assert f"timeout: {host} accepted the connection but sent no answer within 0.3 s" in str(error)
    assert error.kind == FailureKind.TIMEOUT
    assert isinstance(error.__cause__, httpx.ReadTimeout)


def test_an_http_status_keeps_its_name_and_host(tls_url: str, certificates: dict[str, SelfSigned]) -> None:
    async def unavailable(request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=503)

    app = Starlette(routes=[Route("/thing", unavailable)])
    with serve_in_thread(app) as served:
        error, _ = _fail(served.url)
    host = served.url.removeprefix("http://")
    assert str(error) == f"GET /thing still failing after 2 attempts (last: HTTP 503 from {host})"
    assert error.status == 503 and error.__cause__ is None


# -- one CA setting per purpose ----------------------------------------------------------


def test_ssl_cert_file_neither_breaks_nor_grants_trust(
    tls_url: str, certificates: dict[str, SelfSigned], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SSL_CERT_FILE names an unrelated CA (say, the SMTP relay's): an API call trusted through
    # its own CA bundle still works...
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["unrelated"].cert))
    sleeps: list[float] = []
    with _client(tls_url, sleeps, ca_bundle=str(certificates["server"].cert)) as http:
        assert http.request("GET", "/thing")[1] == {"ok": True}
    # ... and naming the server's certificate in it trusts nothing: the clients do not read it.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["server"].cert))
    error, _ = _fail(tls_url)
    assert error.kind == FailureKind.TLS


def test_slack_keeps_the_public_cas_whatever_ssl_cert_file_says(
    tls_url: str, certificates: dict[str, SelfSigned], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["server"].cert))
    with pytest.raises(
        NotifierError,
        match=r"Slack webhook unreachable: TLS: the certificate of 127\.0\.0\.1:\d+ is not trusted",
    ):
        SlackNotifier(f"{tls_url}/thing", timeout_seconds=10).send(Alert("title", "body"))


@pytest.fixture
def logikal_tls_url(certificates: dict[str, SelfSigned]) -> Iterator[str]:
    """The LogiKal sandbox over https with a certificate of a private CA (an on-premises server)."""
    sandbox = LogikalSandbox(sandbox_config())
    with serve_in_thread(create_app(sandbox), tls=certificates["server"].files) as served:
        yield served.url + BASE_PATH


def test_logikal_trusts_logikal_ca_bundle_beside_an_unrelated_ssl_cert_file(
    logikal_tls_url: str, certificates: dict[str, SelfSigned], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["unrelated"].cert))
    monkeypatch.setenv("LOGIKAL_BASE_URL", logikal_tls_url)
    monkeypatch.setenv("LOGIKAL_USERNAME", "sandbox")
    monkeypatch.setenv("LOGIKAL_PASSWORD", "sandbox")
    monkeypatch.setenv("LOGIKAL_CA_BUNDLE", str(certificates["server"].cert))
    with (
        dg.build_resources({"logikal": logikal_resource_from_env()}) as resources,
        SessionPool(resources.logikal.settings(), 1) as pool,
    ):
        session = pool.acquire(Target(ROOT))
        assert session.logged_in and session.list_directories()
        pool.release(session)


def test_an_unreadable_logikal_ca_bundle_fails_at_resource_setup_naming_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    resource = LogikalResource(
        base_url="https://logikal.internal/MbioeService.svc/api/v3",
        username="u",
        password="p",
        ca_bundle=str(missing),
    )
    with pytest.raises(dg.DagsterResourceFunctionError) as error, dg.build_resources({"logikal": resource}):
        pass
    cause = error.value.__cause__
    assert isinstance(cause, CaBundleError)
    assert str(cause) == (
        f"LOGIKAL_CA_BUNDLE={missing}: cannot load it as a PEM file of CA certificates "
        "(No such file or directory)"
    )
    assert isinstance(cause.__cause__, FileNotFoundError)

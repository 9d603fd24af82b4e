"""Real stand-ins for the alert channels: a Slack webhook over HTTP and SMTP servers (plain and STARTTLS).

Both run in threads of the test process and record what they receive.
"""

import contextlib
import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import dagster as dg
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# Not exported by `dagster`: the pieces its own tests use to run a daemon over a code location.
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon as _FreshnessDaemon
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from logikal_square_sync.policies import policies
from logikal_square_sync_sandbox.server import free_port, serve_in_thread

# What a real incoming-webhook path looks like; the last part is the secret.
WEBHOOK_PATH = "/services/T0ALERTS/B0ALERTS/webhookSecretToken4711"
BROKEN_WEBHOOK_PATH = "/services/T0ALERTS/B0GONE/revokedSecretToken0815"
SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-Pa55word-never-logged"


@dataclass
class SlackStandIn:
    url: str
    posts: list[dict] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def broken_webhook_url(self) -> str:
        return self.url + BROKEN_WEBHOOK_PATH

    @property
    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]


def _slack_app(posts: list[dict]) -> Starlette:
    async def webhook(request: Request) -> PlainTextResponse:
        posts.append(await request.json())
        return PlainTextResponse("ok")

    async def revoked(request: Request) -> PlainTextResponse:
        # What Slack answers for a deleted webhook.
        return PlainTextResponse("no_service", status_code=404)

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route(BROKEN_WEBHOOK_PATH, revoked, methods=["POST"]),
        ]
    )


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    posts: list[dict] = []
    with serve_in_thread(_slack_app(posts)) as served:
        yield SlackStandIn(url=served.url, posts=posts)


@dataclass
class Mailbox:
    host: str
    port: int
    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)  # per envelope: did it arrive over TLS

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[misc]
            for _, _, content in self.envelopes
        ]

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd hook name)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.encrypted.append(session.ssl is not None)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """A plain SMTP relay without TLS or AUTH, like a relay on the internal network."""
    mailbox = Mailbox("127.0.0.1", free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the STARTTLS test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


@pytest.fixture
def smtp_starttls(certificate: Certificate) -> Iterator[Mailbox]:
    """A submission server like a mail provider's: STARTTLS required, AUTH only over TLS."""
    mailbox = Mailbox("127.0.0.1", free_port())

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            mailbox.logins.append(auth_data.login.decode())
        # handled=False: let aiosmtpd answer "535 credentials invalid" itself.
        return AuthResult(success=ok, handled=False)

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certificate.cert, certificate.key)
    controller = Controller(
        mailbox,
        hostname=mailbox.host,
        port=mailbox.port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_tls_optional(certificate: Certificate) -> Iterator[Mailbox]:
    """An internal relay without AUTH that offers, but does not require, STARTTLS."""
    mailbox = Mailbox("127.0.0.1", free_port())
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certificate.cert, certificate.key)
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port, tls_context=server_context)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance on in-memory SQLite storage (the same SQL event log `dagster dev` uses).

    `dg.instance_for_test()` would add a temporary folder and ~1.5 s per test for no extra coverage.
    """
    test_instance = dg.DagsterInstance.ephemeral()
    try:
        yield test_instance
    finally:
        test_instance.dispose()


@dataclass
class FreshnessDaemon:
    """Dagster's own freshness daemon over a code location: what the UI's freshness badges show."""

    instance: dg.DagsterInstance
    workspace: object

    def evaluate(self) -> None:
        list(_FreshnessDaemon().run_iteration(self.workspace))  # type: ignore[arg-type]


@contextlib.contextmanager
def freshness_daemon(instance: dg.DagsterInstance, module: str) -> Iterator[FreshnessDaemon]:
    """Loads `module`'s `defs` in-process, as the daemon would, and evaluates freshness on demand."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=module, attribute="defs"),
        location_name="test_location",
    )
    with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as workspace:
        yield FreshnessDaemon(instance, workspace)


@pytest.fixture(scope="module")
def stored_instance() -> Iterator[dg.DagsterInstance]:
    """An instance the daemon machinery accepts (it must be shareable across processes); per module,
    wiped before each test by the tests' own fixture, because creating one costs seconds."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


class SilentPort:
    """A TCP port in front of a real server that can go silent, as a dead relay behind a firewall does.

    Silent: it accepts each connection and never answers (a webhook that hangs, an SMTP
    relay that drops the dialogue). Forwarding: bytes pass both ways to the real server.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = True
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            if not self.silent:
                upstream = socket.create_connection(self.target)
                self._held.append(upstream)
                for source, sink in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def silent_port() -> Iterator[Callable[[str, int], SilentPort]]:
    ports: list[SilentPort] = []

    def make(host: str, port: int) -> SilentPort:
        ports.append(SilentPort((host, port)))
        return ports[-1]

    yield make
    for port in ports:
        port.stop()


@dataclass
class HeartbeatMonitor:
    """A dead-man's-switch monitor's push endpoint (healthchecks.io, Uptime Kuma): it counts pings."""

    url: str
    pings: list[str] = field(default_factory=list)  # the User-Agent of each ping

    @property
    def ping_url(self) -> str:
        return self.url + HEARTBEAT_PATH

    @property
    def broken_url(self) -> str:
        return self.url + "/ping/broken"


HEARTBEAT_PATH = "/ping/6b0e7c5e-hb-secret-4711"


def heartbeat_app(pings: list[str]) -> Starlette:
    async def ping(request: Request) -> PlainTextResponse:
        pings.append(request.headers.get("user-agent", ""))
        return PlainTextResponse("OK")

    async def broken(request: Request) -> PlainTextResponse:
        return PlainTextResponse("server error", status_code=500)

    return Starlette(
        routes=[
            Route(HEARTBEAT_PATH, ping, methods=["GET"]),
            Route("/ping/broken/{secret}", broken, methods=["GET"]),
        ]
    )


@pytest.fixture
def monitor() -> Iterator[HeartbeatMonitor]:
    pings: list[str] = []
    with serve_in_thread(heartbeat_app(pings)) as served:
        yield HeartbeatMonitor(served.url, pings)


@pytest.fixture
def alert_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Lays `alerts:` values over policies.yaml through LSS_POLICIES_FILE, as an operator would."""

    def apply(**values: float) -> None:
        path = tmp_path / "alert-policies.yaml"
        path.write_text(yaml.safe_dump({"alerts": values}))
        monkeypatch.setenv("LSS_POLICIES_FILE", str(path))
        policies.cache_clear()

    yield apply
    policies.cache_clear()

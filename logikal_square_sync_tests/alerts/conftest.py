"""Real stand-ins for the alert channels: a Slack webhook over HTTP, SMTP servers (plain and
STARTTLS) and a heartbeat monitor.

All run in threads of the test process and record what they receive.
"""

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from aiosmtpd.controller import Controller

from logikal_square_sync.policies import policies
from logikal_square_sync_sandbox.server import free_port, serve_in_thread
from logikal_square_sync_tests.alerts.heartbeat_monitor import HeartbeatMonitor, heartbeat_app
from logikal_square_sync_tests.alerts.mail import Certificate, Mailbox
from logikal_square_sync_tests.alerts.silent_port import SilentPort
from logikal_square_sync_tests.alerts.slack import SlackStandIn, slack_app


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    posts: list[dict[str, Any]] = []
    with serve_in_thread(slack_app(posts)) as served:
        yield SlackStandIn(url=served.url, posts=posts)


@contextlib.contextmanager
def _relay(certificate: Certificate | None = None, *, submission: bool = False) -> Iterator[Mailbox]:
    """A mailbox behind an SMTP server on a free port. With `certificate` it offers STARTTLS; as a
    `submission` server it requires STARTTLS and, over TLS only, AUTH as SMTP_USER."""
    mailbox = Mailbox("127.0.0.1", free_port())
    tls_context = None
    if certificate is not None:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(certificate.cert, certificate.key)
    controller = Controller(
        mailbox,
        hostname=mailbox.host,
        port=mailbox.port,
        tls_context=tls_context,
        require_starttls=submission,
        authenticator=mailbox.authenticate if submission else None,
        auth_required=submission,  # and only over TLS: aiosmtpd's default
    )
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """A plain SMTP relay without TLS or AUTH, like a relay on the internal network."""
    with _relay() as mailbox:
        yield mailbox


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
    with _relay(certificate, submission=True) as mailbox:
        yield mailbox


@pytest.fixture
def smtp_tls_optional(certificate: Certificate) -> Iterator[Mailbox]:
    """An internal relay without AUTH that offers, but does not require, STARTTLS."""
    with _relay(certificate) as mailbox:
        yield mailbox


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


@pytest.fixture(scope="module")
def stored_instance() -> Iterator[dg.DagsterInstance]:
    """An instance the daemon machinery accepts (it must be shareable across processes); per module,
    wiped before each test by the tests' own fixture, because creating one costs seconds."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def silent_port() -> Iterator[Callable[[str, int], SilentPort]]:
    ports: list[SilentPort] = []

    def make(host: str, port: int) -> SilentPort:
        ports.append(SilentPort((host, port)))
        return ports[-1]

    yield make
    for port in ports:
        port.stop()


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

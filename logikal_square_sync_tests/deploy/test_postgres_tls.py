"""The documented `sslmode=verify-full` settings verify the server, against a PostgreSQL with TLS.

A throw-away PostgreSQL cluster (the machine's PostgreSQL binaries, its own port and folder)
serves a certificate for `localhost` signed by a test CA. The three ways the deployment names
TLS are each tried: the warehouse URL's query, the chart's `postgresqlParams` for Dagster's
storage (through dagster-postgres, as the chart's instance config does), and libpq's
PGSSLMODE/PGSSLROOTCERT of the migrate Job. Each connects with the right CA and host name, and
is refused by another CA or another host name, where `sslmode=require` alone connects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster_postgres import PostgresRunStorage
from dagster_postgres.utils import get_conn_string

from logikal_square_sync.warehouse.connections import create_warehouse_engine
from logikal_square_sync_sandbox.server import free_port
from logikal_square_sync_tests.ci import under_ci
from logikal_square_sync_tests.deploy.connections import refusal

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca: Path
    other_ca: Path

    def url(self, host: str = "localhost", **query: str) -> str:
        return sa.URL.create(
            "postgresql+psycopg2",
            username="postgres",
            host=host,
            port=self.port,
            database="postgres",
            query=query,
        ).render_as_string(hide_password=False)


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _unavailable(reason: str) -> None:
    if under_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def _run(args: list[str], cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=120)


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; CI and this machine's sessions are root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _certificates(folder: Path) -> None:
    """A CA, a server certificate for DNS name `localhost` signed by it, and an unrelated CA."""
    new_key = ["-newkey", "rsa:2048", "-nodes"]
    for name in ("ca", "other-ca"):
        ca = [
            "-x509",
            "-days",
            "2",
            "-subj",
            f"/CN=lss {name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
        ]
        _run(["openssl", "req", *new_key, *ca], folder)
    request = ["-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]
    _run(["openssl", "req", *new_key, *request], folder)
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    signed_by_ca = [
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]
    _run(["openssl", "x509", "-req", "-in", "server.csr", *signed_by_ca, "-out", "server.crt"], folder)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    bin_dir = _bin_dir()
    if bin_dir is None or not shutil.which("openssl") or (os.geteuid() == 0 and not shutil.which("runuser")):
        _unavailable("needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin), openssl and runuser")
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="lss-pg-tls-"))
    data, port = folder / "data", free_port()
    try:
        _certificates(folder)
        os.chmod(folder, 0o755)
        os.chmod(folder / "server.key", 0o600)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
            shutil.chown(folder / "server.key", "postgres")
        _run(
            _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]), folder
        )
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c ssl=on "
            f"-c ssl_cert_file={folder / 'server.crt'} -c ssl_key_file={folder / 'server.key'}"
        )
        pg_ctl = str(bin_dir / "pg_ctl")
        _run(
            _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]),
            folder,
        )
        try:
            yield TlsServer(port, folder / "ca.crt", folder / "other-ca.crt")
        finally:
            _run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _connects_with_tls(url: str) -> bool:
    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar()
            )
    finally:
        engine.dispose()


def test_the_warehouse_url_query_verifies_the_server(tls_server: TlsServer) -> None:
    good = tls_server.url(sslmode="verify-full", sslrootcert=str(tls_server.ca))
    assert _connects_with_tls(good)
    assert "certificate verify failed" in refusal(
        tls_server.url(sslmode="verify-full", sslrootcert=str(tls_server.other_ca))
    )
    assert "does not match host name" in refusal(
        tls_server.url("127.0.0.1", sslmode="verify-full", sslrootcert=str(tls_server.ca))
    )
    # What `require` alone accepts: any server that answers TLS, under any name, whoever signed it.
    assert _connects_with_tls(tls_server.url("127.0.0.1", sslmode="require"))


def test_the_charts_postgresql_params_verify_dagsters_storage(tls_server: TlsServer) -> None:
    chart = yaml.safe_load((ROOT / "deploy" / "helm-values.yaml").read_text())["postgresql"]
    assert chart["postgresqlParams"]["sslmode"] == "verify-full"

    def storage_url(ca: Path, host: str = "localhost") -> str:
        # What the chart's instance config hands dagster-postgres: these params, another CA path.
        params = {**chart["postgresqlParams"], "sslrootcert": str(ca)}
        return get_conn_string(
            username="postgres", password="", hostname=host, db_name="postgres", port=str(tls_server.port),
            params=params, scheme=chart["postgresqlScheme"],
        )  # fmt: skip

    storage = PostgresRunStorage(storage_url(tls_server.ca))
    try:
        assert storage.get_runs() == []
    finally:
        storage.dispose()
    assert "certificate verify failed" in refusal(storage_url(tls_server.other_ca))
    assert "does not match host name" in refusal(storage_url(tls_server.ca, host="127.0.0.1"))


def test_the_migrate_jobs_libpq_variables_verify_a_url_without_params(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job,) = [
        doc for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "migrate-job.yaml").read_text()) if doc
    ]
    env = {
        item["name"]: item.get("value") for item in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PGSSLMODE"] == "verify-full"
    plain = tls_server.url()  # as the image's dagster.yaml builds it: no TLS parameters
    monkeypatch.setenv("PGSSLMODE", env["PGSSLMODE"])
    monkeypatch.setenv("PGSSLROOTCERT", str(tls_server.other_ca))
    assert "certificate verify failed" in refusal(plain)
    monkeypatch.setenv("PGSSLROOTCERT", str(tls_server.ca))
    assert _connects_with_tls(plain)

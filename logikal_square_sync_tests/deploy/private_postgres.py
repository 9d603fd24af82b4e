"""A PostgreSQL cluster of a test's own, to restart under a running sync.

The machine's PostgreSQL service is shared by every other test, so a test that restarts its
database gets a cluster of its own: `initdb` and `pg_ctl` of the installed server, a free port
on loopback, trust authentication, fsync off (a throw-away cluster). PostgreSQL refuses to run
as root, so under root the cluster belongs to the `postgres` user and lives in a folder of
its own under the system's temp directory (pytest's are private to root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from logikal_square_sync_sandbox.server import free_port
from logikal_square_sync_tests.ci import under_ci


def _server_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    return max(found, key=lambda path: int(path.parent.name), default=None) if found else None


@dataclass
class PrivatePostgres:
    bin: Path
    folder: Path
    port: int
    run_as: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def log_tail(self, chars: int = 3000) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def ctl(self, *args: str) -> None:
        """pg_ctl, waiting for it; the server it starts logs to postgres.log (never to a pipe of ours,
        which it would hold open for its whole life)."""
        command = [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "120"]
        command += ["-l", str(self.folder / "postgres.log"), *args]
        output = self.folder / "pg_ctl.out"
        with output.open("w") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=180, check=False)
        assert done.returncode == 0, f"pg_ctl {' '.join(args)}: {output.read_text()}\n{self.log_tail()}"

    def restart(self, mode: str = "immediate") -> None:
        """`immediate`: the server stops as in a crash (no checkpoint) and recovers from its WAL."""
        self.ctl("-m", mode, "restart")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server_bin = _server_bin()
    if server_bin is None:
        message = "no PostgreSQL server under /usr/lib/postgresql/*/bin"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="lss-postgres-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    cluster = PrivatePostgres(bin=server_bin, folder=folder, port=free_port(), run_as=run_as)
    try:
        initdb = [*run_as, str(server_bin / "initdb"), "-D", str(cluster.data), "-U", "postgres"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-sync"]
        done = subprocess.run(initdb, capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        options = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        cluster.ctl("-o", options, "start")
        yield cluster
    finally:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            if cluster.data.exists():
                cluster.ctl("-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)

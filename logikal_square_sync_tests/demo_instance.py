"""One running demo (`python -m logikal_square_sync_sandbox.demo`) shared by the xdist group `demo`.

Starting it costs most of those tests' time (sandbox, `dagster dev`, every asset materialized
through the run queue), so the demo test and the console test share one per worker: both are
in the group `demo`, which `--dist loadgroup` keeps on one worker.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DONE_LINES = ("All assets materialized.", "Some runs failed")


@dataclass
class RunningDemo:
    url: str
    data_dir: Path
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    def log_tail(self) -> str:
        log = self.data_dir / "dagster.log"
        return "".join(self.output) + (log.read_text()[-4000:] if log.exists() else "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_demo(data_dir: Path, timeout: float = 600) -> RunningDemo:
    """The demo, started and waited for until its runs are done (or failed)."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "logikal_square_sync_sandbox.demo"),
            *("--port", str(port), "--data-dir", str(data_dir)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    demo = RunningDemo(url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=process)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 5)
        if not ready:
            continue
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the demo exited early:\n" + demo.log_tail())
        demo.output.append(line)
        if line.startswith(DONE_LINES):
            return demo
    stop_demo(demo)
    raise AssertionError(f"the demo did not finish its runs within {timeout:.0f}s:\n" + demo.log_tail())


def stop_demo(demo: RunningDemo) -> None:
    """SIGTERM, which the demo turns into its own orderly stop of Dagster and the sandbox."""
    if demo.process.poll() is None:
        os.killpg(demo.process.pid, signal.SIGTERM)
    try:
        demo.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(demo.process.pid, signal.SIGKILL)
        demo.process.wait()


@pytest.fixture(scope="session")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    demo = start_demo(tmp_path_factory.mktemp("demo"))
    try:
        yield demo
    finally:
        stop_demo(demo)

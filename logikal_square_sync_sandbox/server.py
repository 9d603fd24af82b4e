"""Serve a sandbox ASGI app over real HTTP on the loopback interface.

The sandbox servers are real HTTP servers (uvicorn), so the clients exercise
the same code paths against them as against the vendors. `serve_in_thread`
runs one in a background thread of the current process (tests); the CLI in
`logikal_square_sync_sandbox.__main__` runs them in their own process (demo,
benchmarks), so their memory never counts against the sync's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class ServedApp:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(
    app, host: str = "127.0.0.1", port: int | None = None, *, tls: tuple[str, str] | None = None
) -> ServedApp:
    """`tls`: (certificate file, key file) to serve https (tests of the clients' CA settings)."""
    port = port or free_port(host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Keep-alive long enough that a paging client reuses its connection.
        timeout_keep_alive=30,
        # Stopping must not wait out a deliberately slow response (fault injection).
        timeout_graceful_shutdown=1,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox server on {host}:{port} did not start")
        time.sleep(0.01)
    return ServedApp(url=f"{'https' if tls else 'http'}://{host}:{port}", server=server, thread=thread)


@contextlib.contextmanager
def serve_in_thread(
    app, host: str = "127.0.0.1", port: int | None = None, *, tls: tuple[str, str] | None = None
) -> Iterator[ServedApp]:
    served = start_in_thread(app, host, port, tls=tls)
    try:
        yield served
    finally:
        served.stop()

"""A TCP port in front of a real server that can go silent, as a dead relay behind a firewall does."""

from __future__ import annotations

import contextlib
import socket
import threading


class SilentPort:
    """Silent: it accepts each connection and never answers (a webhook that hangs, an SMTP
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

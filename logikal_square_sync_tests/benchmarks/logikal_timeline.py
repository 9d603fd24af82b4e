"""Per-session timeline of a LogiKal sync's calls, for `logikal_force_sync --timeline`.

An httpx transport shared by every session of the pools records each call:
which session sent it (by its token; a login belongs to the token it
returns), when it started and ended, and the phase the session stood in. The
chart shows one row per session at a quarter second a character: L login,
d directory select, p project select, P GET /phases, f phase select, l GET
/elevations, e elevation select, a digit a parts list (the phase's number),
x logout, `.` idle between two calls of the session.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import httpx

_SYMBOLS = {
    "POST /auth": "L",
    "DELETE /auth": "x",
    "POST /directories/select": "d",
    "POST /projects/select": "p",
    "GET /phases": "P",
    "POST /phases/select": "f",
    "GET /elevations": "l",
    "POST /elevations/select": "e",
}
PARTS_LIST = "GET /elevations/selected/parts-list"
RESOLUTION = 0.25  # seconds a character


@dataclass(frozen=True)
class Call:
    session: int
    label: str
    start: float
    end: float
    phase: str | None


class TimelineTransport(httpx.BaseTransport):
    """Records every call it carries; the sessions' clients share it, so `close` leaves it open."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._sessions: dict[str, int] = {}  # token -> session number, in login order
        self._phases: dict[int, str] = {}
        self.calls: list[Call] = []
        self.origin = time.monotonic()

    def reset(self) -> None:
        with self._lock:
            self.calls, self.origin = [], time.monotonic()
            self._sessions.clear()
            self._phases.clear()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = self._inner.handle_request(request)
        response.read()
        ended = time.monotonic()
        label = f"{request.method} {request.url.path.rsplit('/api/v3', 1)[-1]}"
        with self._lock:
            session = self._session_of(request, response, label)
            if label == "POST /phases/select" and response.is_success:
                self._phases[session] = json.loads(request.content).get("identifier", "")
            self.calls.append(
                Call(session, label, started - self.origin, ended - self.origin, self._phases.get(session))
            )
        return response

    def _session_of(self, request: httpx.Request, response: httpx.Response, label: str) -> int:
        if label == "POST /auth":
            token = ""
            if response.is_success:
                token = (json.loads(response.content).get("data") or {}).get("token", "")
        else:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self._sessions.setdefault(token, len(self._sessions) + 1)

    def close(self) -> None:
        pass  # shared by every session's client: closed with `shut`

    def shut(self) -> None:
        self._inner.close()


def chart(calls: list[Call], phase_numbers: dict[str, int]) -> str:
    """One row per session, a character per RESOLUTION seconds, then each session's busy share."""
    if not calls:
        return "(no calls)"
    end = max(call.end for call in calls)
    width = int(end / RESOLUTION) + 1
    rows: list[str] = []
    for session in sorted({call.session for call in calls}):
        own = sorted((c for c in calls if c.session == session), key=lambda c: c.start)
        cells = [" "] * width
        first, last = int(own[0].start / RESOLUTION), int(own[-1].end / RESOLUTION)
        for index in range(first, min(last + 1, width)):
            cells[index] = "."
        busy = 0.0
        for call in own:
            symbol = _SYMBOLS.get(call.label, "?")
            if call.label == PARTS_LIST:
                symbol = str(phase_numbers.get(call.phase or "", 0))
            busy += call.end - call.start
            for index in range(int(call.start / RESOLUTION), min(int(call.end / RESOLUTION) + 1, width)):
                cells[index] = symbol
        parts = sum(1 for c in own if c.label == PARTS_LIST)
        rows.append(
            f"S{session:<2} {''.join(cells)}  {own[0].start:5.1f}-{own[-1].end:5.1f} s, "
            f"{parts} parts lists, busy {busy:.1f} s"
        )
    scale = "".join(f"{t:<20}" for t in range(0, int(end) + 1, 5))
    return "\n".join([f"    {scale}", *rows])

"""A client for Orgadata LogiKal's MBIOE REST API v3 over httpx.

One `LogikalSession` is one login: a bearer token and the server-side cursor
it moves (see `navigation`). It unwraps the `{data, hints, warnings}`
envelope, maps error answers to the errors in `errors`, and on a 401 logs in
again and replays its selection before it repeats the call, so an expired
token costs one login and never a restart. Transient failures (5xx, 429,
timeouts, cut bodies) are retried by the shared `RetryingClient` — except those
of a select: the server may have applied a select whose answer was lost, or
that a gateway answered 502 or 504 after the server behind it applied it, and a
blind retry would then be sent from a state the client cannot see (and
answered 405 or 409, read as "siblings refused" or a lock). So the session ends
that server session, logs in again and replays its route before it repeats the
select. Every 405 or 409 a select gets is therefore the answer to a select sent
from a state the client knows: a server session in which a select ended in
doubt is never used again.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from logikal_square_sync.common.http import RetryingClient, RetryPolicy
from logikal_square_sync.common.http_errors import describe, host_of
from logikal_square_sync.logikal.engine.client.errors import (
    LogikalAnswerLostError,
    LogikalApiError,
    LogikalAuthError,
    LogikalConflictError,
    LogikalError,
    LogikalNotFoundError,
    LogikalResponseError,
    LogikalSelectServerError,
    LogikalWrongStateError,
)
from logikal_square_sync.logikal.engine.client.navigation import Cursor, State, Step, Target, route
from logikal_square_sync.logikal.engine.client.records import (
    DirectoryRecord,
    ElevationRecord,
    PhaseRecord,
    ProjectRecord,
    parse_records,
)

if TYPE_CHECKING:
    # Imported where a session is opened (see common/http.py): loading the code location pays nothing.
    import httpx

log = logging.getLogger(__name__)


def _lost_answer() -> tuple[type[BaseException], ...]:
    """What a select raises when its answer never arrived whole: the connection died,
    timed out, or the body was cut (ValueError: the JSON decode of a cut body); or
    when a 5xx came instead, which a gateway may send after the server applied it."""
    import httpx

    return (httpx.TransportError, ValueError, LogikalSelectServerError)


@dataclass(frozen=True)
class ConnectionSettings:
    base_url: str
    username: str
    password: str = field(repr=False)
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_attempts: int = 4
    retry_base_delay_seconds: float = 0.5
    # LOGIKAL_CA_BUNDLE: a PEM file of the CAs to trust for LogiKal (an on-premises server with a
    # private CA); None: the public CAs (logikal_square_sync.common.http.tls_context).
    ca_bundle: str | None = None
    # Tests inject a transport; production talks to the network.
    transport: httpx.BaseTransport | None = field(default=None, repr=False, compare=False)


class ClientStats:
    """Counters shared by every session of a pool (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.logins = 0
        self.logouts = 0
        self.reauthentications = 0
        self.tokens_adopted = 0  # sessions that started on a banked token instead of a login
        self.lost_answers = 0
        self.confirmations = 0
        self.relistings = 0
        self.retries = 0
        self.calls: Counter[str] = Counter()

    def count_call(self, label: str) -> None:
        with self._lock:
            self.calls[label] += 1

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def report_counts(self) -> dict[str, int]:
        """What a sync's report shows of the pool (`sync_report.ClientCounts`); `snapshot` has the rest."""
        with self._lock:
            return {
                "api_calls": sum(self.calls.values()) + self.retries,
                "retries": self.retries,
                "logins": self.logins,
            }

    def listings(self, *paths: str) -> int:
        """GET calls of these paths so far: the answers a report counts as pages."""
        with self._lock:
            return sum(self.calls[f"GET {path}"] for path in paths)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "logins": self.logins,
                "logouts": self.logouts,
                "reauthentications": self.reauthentications,
                "tokens_adopted": self.tokens_adopted,
                # Selects whose answer was lost or a 5xx, replayed in a new server session.
                "lost_answers": self.lost_answers,
                # 404s on selects checked against a listing in a fresh session.
                "confirmations": self.confirmations,
                # Phase or elevation listings that lacked live rows, listed again in a fresh session.
                "relistings": self.relistings,
                "retries": self.retries,
                "api_calls": sum(self.calls.values()) + self.retries,
                "calls_by_endpoint": dict(sorted(self.calls.items())),
            }


_session_numbers = itertools.count(1)


def _json_body(response: httpx.Response) -> Any:
    return response.json()


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        errors = [str(error) for error in body.get("errors") or [] if error]
        if errors:
            return "; ".join(errors)
        if body.get("message"):
            return str(body["message"])
    return response.reason_phrase


class LogikalSession:
    """One login and its cursor. Not thread-safe: a pool lends it to one worker at a time."""

    def __init__(
        self,
        settings: ConnectionSettings,
        stats: ClientStats | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats or ClientStats()
        self.number = next(_session_numbers)
        self.cursor = Cursor()
        self._token: str | None = None
        import httpx

        self._http = RetryingClient(
            settings.base_url.rstrip("/"),
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds),
            retry=RetryPolicy(
                max_attempts=settings.max_attempts, base_delay=settings.retry_base_delay_seconds
            ),
            transport=settings.transport,
            ca_bundle=settings.ca_bundle,
            ca_bundle_setting="LOGIKAL_CA_BUNDLE",
        )
        self._retries_seen = 0
        self._reauthenticating = False

    def __repr__(self) -> str:
        return f"<LogikalSession {self.number} {self.cursor.describe()}>"

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    # -- authentication ------------------------------------------------------

    def login(self) -> None:
        """POST /auth; the session starts at the root of the project center."""
        body = {"username": self.settings.username, "password": self.settings.password, "erp": True}
        response, decoded = self._send("POST", "/auth", json=body, authenticated=False)
        if response.status_code == 401:
            raise LogikalAuthError(
                f"LogiKal refused the login of user {self.settings.username!r}: {_server_message(response)}"
            )
        if not response.is_success:
            raise self._error("POST /auth", response, None)
        token = self._data(decoded, "POST /auth")
        if not isinstance(token, dict) or not isinstance(token.get("token"), str) or not token["token"]:
            raise LogikalResponseError("POST /auth: the answer carries no session token")
        self._token = token["token"]
        self.cursor = Cursor(State.ROOT)
        self.stats.add(logins=1)

    def adopt(self, token: str) -> None:
        """Use a token another process logged in and left at the root (the session bank's).

        No login is counted. If the server refuses it after all, the first call answers
        401 and the session logs in again like after any expiry.
        """
        self._token = token
        self.cursor = Cursor(State.ROOT)
        self.stats.add(tokens_adopted=1)

    def hand_over(self) -> str:
        """The token, for another process to use: this session forgets it without logging out."""
        token = self._token
        if token is None:
            raise LogikalError(f"LogiKal session {self.number}: no token to hand over")
        self._token = None
        self.cursor = Cursor()
        self._collect_retries()
        self._http.close()
        return token

    def logout(self) -> None:
        """DELETE /auth. Never raises: a failed logout is logged, the token forgotten either way."""
        try:
            self._end_server_session()
        finally:
            self._collect_retries()
            self._http.close()

    def restart(self) -> None:
        """A fresh server session in place of this one: log out, log in again (at the root)."""
        self._end_server_session()
        self.login()

    def _end_server_session(self) -> None:
        if self._token is None:
            return
        try:
            response, _ = self._send("DELETE", "/auth")
            # 401: the token had expired already, so there is no session left to end.
            if response.is_success or response.status_code == 401:
                self.stats.add(logouts=1)
            else:
                log.warning(f"LogiKal session {self.number}: logout answered {response.status_code}")
        except Exception as error:  # noqa: BLE001 - logging out must never mask the real outcome
            log.warning(f"LogiKal session {self.number}: logout failed: {error}")
        finally:
            self._token = None
            self.cursor = Cursor()

    # -- listings ------------------------------------------------------------

    def list_directories(self) -> list[DirectoryRecord]:
        """Children of the current directory (the roots in root state).

        A path listed twice is left in: the directory walk names it and syncs the rest
        (`directory_sync`), where a whole listing refused here would stop the walk.
        """
        data = self._call("GET", "/directories")
        return parse_records(DirectoryRecord, data, "GET /directories")

    def list_projects(self) -> list[ProjectRecord]:
        data = self._call("GET", "/projects")
        return parse_records(ProjectRecord, data, "GET /projects", key=lambda p: p.id)

    def list_phases(self) -> list[PhaseRecord]:
        data = self._call("GET", "/phases")
        return parse_records(
            PhaseRecord, data, f"GET /phases (project {self.cursor.project_id})", key=lambda p: p.id
        )

    def list_elevations(self) -> list[ElevationRecord]:
        data = self._call("GET", "/elevations")
        call = f"GET /elevations (phase {self.cursor.phase_id} of project {self.cursor.project_id})"
        return parse_records(ElevationRecord, data, call, key=lambda e: e.id)

    def parts_list(self) -> bytes:
        """The selected elevation's parts list: the decoded SQLite file."""
        data = self._call("GET", "/elevations/selected/parts-list")
        if not isinstance(data, str):
            raise LogikalResponseError(
                f"parts list of elevation {self.cursor.elevation_id}: expected base64 text, "
                f"got {type(data).__name__}"
            )
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as error:
            raise LogikalResponseError(
                f"parts list of elevation {self.cursor.elevation_id} is not valid base64: {error}"
            ) from None

    # -- selection -----------------------------------------------------------

    def select_directory(self, path: str) -> None:
        self._select("directory", path)

    def select_project(self, project_id: str) -> None:
        self._select("project", project_id)

    def select_phase(self, phase_id: str) -> None:
        self._select("phase", phase_id)

    def select_elevation(self, elevation_id: str) -> None:
        self._select("elevation", elevation_id)

    def goto(self, target: Target, *, sibling_elevations: bool) -> None:
        """Select what `target` needs; a session that cannot get there must be replaced."""
        steps = route(self.cursor, target, sibling_elevations=sibling_elevations)
        if steps is None:
            raise LogikalError(
                f"LogiKal session {self.number} cannot reach {target.describe()} from "
                f"{self.cursor.describe()}: only a new login can"
            )
        for step in steps:
            self._select(step.kind, step.identifier)

    def _select(self, kind: str, identifier: str) -> None:
        path = {
            "directory": "/directories/select",
            "project": "/projects/select",
            "phase": "/phases/select",
            "elevation": "/elevations/select",
        }[kind]
        step = Step(kind, identifier)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._call("POST", path, json={"identifier": identifier}, selects=step)
                break
            except LogikalApiError:
                raise  # the server answered an error: the cursor is where it was
            except _lost_answer() as error:
                if attempt >= self.settings.max_attempts:
                    self.logout()
                    raise LogikalAnswerLostError(
                        f"POST {path} ({kind} {identifier!r}): the answer was lost {attempt} times, "
                        f"each time replayed in a new session (last: {_lost_reason(error)})"
                    ) from error
                log.warning(
                    f"LogiKal session {self.number}: POST {path} lost its answer ({_lost_reason(error)}); "
                    "the server may have applied it, so a new session replays the route"
                )
                self.stats.add(lost_answers=1)
                self._start_over(self.cursor)
            except BaseException:
                # E.g. 429 until the retries ran out, or a bug: never reuse a session in doubt.
                self.logout()
                raise
        self.cursor = _moved(self.cursor, kind, identifier)

    # -- plumbing --------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        authenticated: bool = True,
        retry: bool = True,
    ) -> tuple[httpx.Response, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if authenticated and self._token else {}
        self.stats.count_call(f"{method} {path}")
        try:
            return self._http.request(
                method,
                path,
                json=json,
                headers=headers,
                decode=_json_body,
                retry_transport_errors=retry,
                retry_server_errors=retry,
            )
        finally:
            self._collect_retries()

    def _collect_retries(self) -> None:
        retries = self._http.stats.retries
        if retries > self._retries_seen:
            self.stats.add(retries=retries - self._retries_seen)
            self._retries_seen = retries

    def _call(self, method: str, path: str, *, json: Any = None, selects: Step | None = None) -> Any:
        label = f"{method} {path}"
        if self._token is None:
            raise LogikalError(f"LogiKal session {self.number}: {label} before login")
        # A select is not retried on a lost answer or a 5xx here: `_select` replays the route instead.
        retry = selects is None
        response, decoded = self._send(method, path, json=json, retry=retry)
        if response.status_code == 401 and not self._reauthenticating:
            self._reauthenticate(label)
            response, decoded = self._send(method, path, json=json, retry=retry)
        if response.status_code == 401:
            raise LogikalAuthError(f"{label}: LogiKal refused a token it had just issued")
        if selects is not None and response.status_code >= 500:
            raise LogikalSelectServerError(label, response.status_code, _server_message(response))
        if not response.is_success:
            raise self._error(label, response, selects)
        return self._data(decoded, label, required=selects is None)

    def _reauthenticate(self, label: str) -> None:
        """Log in again and replay the selection, so the interrupted call can resume."""
        where = self.cursor
        log.info(f"LogiKal session {self.number}: token expired during {label}; logging in again")
        self._reauthenticating = True
        try:
            self._replay(where)
            self.stats.add(reauthentications=1)
        finally:
            self._reauthenticating = False

    def _start_over(self, where: Cursor) -> None:
        """End this server session (its cursor is unknown) and stand at `where` in a new one."""
        self._end_server_session()
        self._replay(where)

    def _replay(self, where: Cursor) -> None:
        self.login()
        replay = [
            Step(kind, identifier)
            for kind, identifier in (
                ("directory", where.directory),
                ("project", where.project_id),
                ("phase", where.phase_id),
                ("elevation", where.elevation_id),
            )
            if identifier is not None
        ]
        for step in replay:
            self._select(step.kind, step.identifier)

    def _data(self, decoded: Any, label: str, *, required: bool = True) -> Any:
        if not isinstance(decoded, dict):
            raise LogikalResponseError(f"{label}: expected the {{data, hints, warnings}} envelope")
        for warning in decoded.get("warnings") or []:
            log.warning(f"LogiKal {label}: {warning}")
        if required and "data" not in decoded:
            raise LogikalResponseError(f"{label}: the answer has no 'data'")
        return decoded.get("data")

    def _error(self, label: str, response: httpx.Response, selects: Step | None) -> LogikalApiError:
        status, state, message = response.status_code, self.cursor.describe(), _server_message(response)
        if status == 404 and selects is not None:
            return LogikalNotFoundError(
                label, status, state, message, f"{selects.kind} {selects.identifier!r}"
            )
        if status == 405:
            return LogikalWrongStateError(label, status, state, message)
        if status == 409:
            return LogikalConflictError(label, status, state, message)
        return LogikalApiError(label, status, state, message)


def _lost_reason(error: BaseException) -> str:
    if isinstance(error, LogikalSelectServerError):
        return f"HTTP {error.status}"
    return describe(error, host_of(error))


def _moved(cursor: Cursor, kind: str, identifier: str) -> Cursor:
    if kind == "directory":
        return Cursor(State.DIRECTORY, directory=identifier)
    if kind == "project":
        return Cursor(State.PROJECT, cursor.directory, project_id=identifier)
    if kind == "phase":
        return Cursor(State.PHASE, cursor.directory, cursor.project_id, phase_id=identifier)
    return Cursor(
        State.ELEVATION, cursor.directory, cursor.project_id, cursor.phase_id, elevation_id=identifier
    )

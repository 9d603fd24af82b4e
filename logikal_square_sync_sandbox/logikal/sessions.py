"""The per-token session cursor and its rules (docs/logikal-api.md §5).

A LogiKal session is a server-side cursor: root (project center) → directory
→ project → phase → elevation. Lists act on the current selection and there
is no way back up except a new login. The rules the sandbox enforces:

| call | allowed in | otherwise |
|---|---|---|
| GET /directories | root, directory | 405 (directory) |
| POST /directories/select | root, directory (any path) | 409 mapping; 404 unknown path |
| GET /projects | directory | 405 (directory) |
| POST /projects/select | directory (project in it) | root 405; project+ 409; 404 |
| GET /projects/selected | project, phase, elevation | 405 (project) |
| GET /phases | project, phase | 405 (project) |
| POST /phases/select | project, phase | root/directory 405; elevation 409; 404 |
| GET /elevations | phase | 405 (phase) |
| GET /elevations/{id}/thumbnail | phase, elevation (id in that phase) | 405 (phase); 400 not in phase |
| POST /elevations/select | phase; elevation if siblings allowed | root..project 405; else 405/409 (*); 404 |
| GET /elevations/selected/* | elevation | 405 (elevation) |

A locked elevation answers 409 "in use by another user" to POST /elevations/select.
(*) Whether the real server refuses a sibling elevation select, and with which
status, is unknown (docs/logikal-api.md §5): the sandbox allows it by default
and refuses it with 409 "isn't valid in the current mapping" or 405 "expects
the session to be in a phase", as configured.

`FirstSelectFaults` stand for more unknowns, per select target (a
directory path, a project, a phase of a project, an elevation): the first
select of each existing target answers 404 once (`first_select_not_found`),
or is applied and then loses its answer (`first_select_answer_lost`: the
server closes the connection without a reply), or is applied and then
answered 502 or 504 by the gateway in front of the server
(`select_applied_error_status`, for a share of the targets or for targets
named by `fail_after_applying`). Either way the next select of the same target
behaves normally, so a client that confirms and replays converges, and one
that trusts a single answer does not.

Lists in the wrong state answer 405 and selects that would move sideways or
up answer 409 "isn't valid in the current mapping", as the real server does
for directories. Objects deleted under a session make calls on them 409.
"""

from __future__ import annotations

import enum
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .tree import Elevation, LogikalTree, Phase, Project

INVALID_SESSION = "Invalid session authentication identifier."
INVALID_BODY = "The request is in an invalid format or is missing required properties."

_Selected = TypeVar("_Selected", Elevation, Project, Phase)


class State(enum.Enum):
    ROOT = "root"
    DIRECTORY = "directory"
    PROJECT = "project"
    PHASE = "phase"
    ELEVATION = "elevation"


class ApiError(Exception):
    """An error answer in the MBIOE error envelope."""

    def __init__(self, status: int, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors if errors is not None else [message]

    def body(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "code": self.status,
            "hints": [],
            "warnings": [],
            "errors": self.errors,
        }


def wrong_state(expected: str) -> ApiError:
    article = "an" if expected[0] in "aeiou" else "a"
    return ApiError(405, f"This operation expects the session to be in {article} {expected}.")


def invalid_mapping(identifier: str) -> ApiError:
    # Wording copied from a real 409 (docs/logikal-api.md §2).
    return ApiError(
        409,
        f"The requested resource '{identifier}' cannot be set, "
        "because it isn't valid in the current mapping.",
    )


def not_found(identifier: str) -> ApiError:
    return ApiError(
        404, f"The requested resource '{identifier}' could not be selected because it was not found."
    )


class AnswerLost(Exception):
    """The call was applied; the connection is to be closed without an answer."""


class AppliedThenFailed(Exception):
    """The call was applied; a gateway is to answer `status` (502, 504) instead of the server."""

    def __init__(self, status: int) -> None:
        super().__init__(f"applied, then answered {status}")
        self.status = status


@dataclass(kw_only=True)
class FirstSelectFaults:
    """Once per select target: a false 404 before applying, a lost answer or a 5xx after it."""

    not_found: bool = False
    answer_lost: bool = False
    applied_error_status: int | None = None
    applied_error_share: float = 1.0
    seed: int = 0
    # The targets each fault has hit: it hits a target once.
    _refused: set[tuple[str, ...]] = field(default_factory=set, init=False)
    _lost: set[tuple[str, ...]] = field(default_factory=set, init=False)
    _failed: set[tuple[str, ...]] = field(default_factory=set, init=False)
    # Targets named by identifier (a path or a GUID): the next select of each answers this status.
    _named: dict[str, int] = field(default_factory=dict, init=False)

    def fail_after_applying(self, identifier: str, status: int = 502) -> None:
        """The next select of `identifier` is applied, then answered `status` (once)."""
        self._named[identifier] = status

    def _in_share(self, key: tuple[str, ...]) -> bool:
        # A stable pick (crc32, not hash(): PYTHONHASHSEED varies) so a seed picks the same targets.
        share = zlib.crc32(repr((self.seed, key)).encode()) / 2**32
        return share < self.applied_error_share

    def before(self, key: tuple[str, ...], identifier: str) -> None:
        """Called once the select is known to succeed; raises the false 404 on a target's first select."""
        if self.not_found and key not in self._refused:
            self._refused.add(key)
            raise not_found(identifier)

    def after(self, key: tuple[str, ...]) -> None:
        """Called once the select is applied: the first answer per target is lost, or a 5xx."""
        if self.answer_lost and key not in self._lost:
            self._lost.add(key)
            raise AnswerLost()
        named = self._named.pop(key[-1], None)
        if named is not None:
            raise AppliedThenFailed(named)
        status = self.applied_error_status
        if status is not None and key not in self._failed and self._in_share(key):
            self._failed.add(key)
            raise AppliedThenFailed(status)


def vanished(kind: str) -> ApiError:
    return ApiError(
        409,
        f"The selected {kind} no longer exists; "
        "the request cannot be performed due to the current resource state.",
    )


@dataclass
class Session:
    token: str
    username: str
    created_at: float
    expires_at: float | None
    state: State = State.ROOT
    directory_path: str | None = None
    project_id: str | None = None
    phase_id: str | None = None
    elevation_id: str | None = None
    expired: bool = False

    def is_live(self, now: float) -> bool:
        return not self.expired and (self.expires_at is None or now < self.expires_at)


class SessionStore:
    """Live tokens. Expired and logged-out tokens are forgotten: they answer 401 like unknown ones."""

    def __init__(self, ttl_seconds: float | None, monotonic: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, username: str) -> Session:
        now = self._monotonic()
        session = Session(
            token=str(uuid.uuid4()),
            username=username,
            created_at=now,
            expires_at=None if self._ttl is None else now + self._ttl,
        )
        with self._lock:
            self._sessions[session.token] = session
        return session

    def authenticate(self, authorization: str | None) -> Session:
        token = _token_from_header(authorization)
        with self._lock:
            session = self._sessions.get(token) if token else None
            if session is None:
                raise ApiError(401, INVALID_SESSION)
            if not session.is_live(self._monotonic()):
                del self._sessions[session.token]
                raise ApiError(401, INVALID_SESSION)
            return session

    def logout(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.token, None)

    def expire(self, token: str | None) -> int:
        with self._lock:
            tokens = list(self._sessions) if token is None else [token]
            count = 0
            for key in tokens:
                session = self._sessions.get(key)
                if session is not None:
                    session.expired = True
                    count += 1
            return count

    def active_count(self) -> int:
        now = self._monotonic()
        with self._lock:
            return sum(1 for session in self._sessions.values() if session.is_live(now))

    def live_tokens(self) -> list[str]:
        now = self._monotonic()
        with self._lock:
            return [token for token, session in self._sessions.items() if session.is_live(now)]

    def get(self, token: str) -> Session | None:
        with self._lock:
            return self._sessions.get(token)


def _token_from_header(authorization: str | None) -> str | None:
    if not authorization:
        return None
    value = authorization.strip()
    # The swagger declares a bare apiKey header; every known client sends "Bearer <token>".
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value.lower() or None


class Navigator:
    """Applies the state rules to a session against the tree. Callers hold the sandbox lock."""

    def __init__(
        self,
        tree: LogikalTree,
        allow_sibling_elevation_select: bool,
        sibling_refusal_status: int = 409,
        first_select: FirstSelectFaults | None = None,
    ) -> None:
        self.tree = tree
        self.allow_sibling_elevation_select = allow_sibling_elevation_select
        self.sibling_refusal_status = sibling_refusal_status
        self.first_select = first_select or FirstSelectFaults()

    # -- directories --------------------------------------------------------

    def list_directories(self, session: Session) -> list[dict[str, Any]]:
        if session.state not in (State.ROOT, State.DIRECTORY):
            raise wrong_state("directory")
        return [d.to_api() for d in self.tree.directory_listing(session.directory_path)]

    def select_directory(self, session: Session, path: str) -> None:
        if session.state not in (State.ROOT, State.DIRECTORY):
            raise invalid_mapping(path)
        if path not in self.tree.directories:
            raise not_found(path)
        self.first_select.before(("directory", path), path)
        session.state = State.DIRECTORY
        session.directory_path = path
        self.first_select.after(("directory", path))

    # -- projects -----------------------------------------------------------

    def list_projects(self, session: Session) -> list[dict[str, Any]]:
        if session.state is not State.DIRECTORY:
            raise wrong_state("directory")
        assert session.directory_path is not None
        if session.directory_path not in self.tree.directories:
            raise vanished("directory")
        return [p.to_api() for p in self.tree.projects_in(session.directory_path)]

    def select_project(self, session: Session, project_id: str) -> None:
        if session.state is State.ROOT:
            raise wrong_state("directory")
        if session.state is not State.DIRECTORY:
            raise invalid_mapping(project_id)
        project = self.tree.projects.get(project_id)
        if project is None or project.directory_path != session.directory_path:
            raise not_found(project_id)
        self.first_select.before(("project", project_id), project_id)
        session.state = State.PROJECT
        session.project_id = project_id
        self.first_select.after(("project", project_id))

    def selected_project(self, session: Session) -> dict[str, Any]:
        if session.state not in (State.PROJECT, State.PHASE, State.ELEVATION):
            raise wrong_state("project")
        return self._project(session).to_api()

    # -- phases -------------------------------------------------------------

    def list_phases(self, session: Session) -> list[dict[str, Any]]:
        if session.state not in (State.PROJECT, State.PHASE):
            raise wrong_state("project")
        return [phase.to_api() for phase in self._project(session).phases]

    def select_phase(self, session: Session, phase_id: str) -> None:
        if session.state in (State.ROOT, State.DIRECTORY):
            raise wrong_state("project")
        if session.state is State.ELEVATION:
            raise invalid_mapping(phase_id)
        # Sibling phases are selectable one after another (the old Odoo addon
        # relied on it, docs/logikal-api.md §5); phase ids repeat across projects, so the
        # lookup is always within the selected project.
        project = self._project(session)
        if project.phase(phase_id) is None:
            raise not_found(phase_id)
        self.first_select.before(("phase", project.id, phase_id), phase_id)
        session.state = State.PHASE
        session.phase_id = phase_id
        self.first_select.after(("phase", project.id, phase_id))

    # -- elevations ---------------------------------------------------------

    def list_elevations(self, session: Session) -> list[dict[str, Any]]:
        if session.state is not State.PHASE:
            raise wrong_state("phase")
        phase = self._phase(session)
        return [self.tree.elevations[eid].to_api() for eid in phase.elevation_ids]

    def thumbnail_target(self, session: Session, elevation_id: str) -> Elevation:
        if session.state not in (State.PHASE, State.ELEVATION):
            raise wrong_state("phase")
        phase = self._phase(session)
        if elevation_id not in phase.elevation_ids:
            # The swagger lists no 404 here: objects the call can't act on are 400s.
            raise ApiError(400, f"The elevation '{elevation_id}' was not found in the selected phase.")
        return self.tree.elevations[elevation_id]

    def select_elevation(self, session: Session, elevation_id: str) -> None:
        if session.state in (State.ROOT, State.DIRECTORY, State.PROJECT):
            raise wrong_state("phase")
        if session.state is State.ELEVATION and not self.allow_sibling_elevation_select:
            if self.sibling_refusal_status == 405:
                raise wrong_state("phase")
            raise invalid_mapping(elevation_id)
        phase = self._phase(session)
        if elevation_id not in phase.elevation_ids:
            raise not_found(elevation_id)
        elevation = self.tree.elevations[elevation_id]
        if elevation.locked:
            raise ApiError(
                409,
                f"The elevation '{elevation.name}' cannot be selected, because it is in use by another user.",
            )
        self.first_select.before(("elevation", elevation_id), elevation_id)
        session.state = State.ELEVATION
        session.elevation_id = elevation_id
        self.first_select.after(("elevation", elevation_id))

    def selected_elevation(self, session: Session) -> Elevation:
        if session.state is not State.ELEVATION:
            raise wrong_state("elevation")
        self._phase(session)
        assert session.elevation_id is not None
        return _still_there(self.tree.elevations.get(session.elevation_id), "elevation")

    # -- helpers ------------------------------------------------------------

    def _project(self, session: Session) -> Project:
        assert session.project_id is not None
        return _still_there(self.tree.projects.get(session.project_id), "project")

    def _phase(self, session: Session) -> Phase:
        assert session.phase_id is not None
        return _still_there(self._project(session).phase(session.phase_id), "phase")


def _still_there(selected: _Selected | None, kind: str) -> _Selected:
    """The session's selected `kind`, unless it was deleted since (409)."""
    if selected is None:
        raise vanished(kind)
    return selected

"""`LogikalSandbox`: the fake LogiKal's state, truth accessors, mutation and fault hooks.

The HTTP layer (`app.py`) is thin: it parses requests, waits the modelled
latency and calls into this object. Tests read the truth and mutate the world
through the same object from their own thread while the server runs, so every
access goes through one re-entrant lock.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..clock import SandboxClock, SystemClock
from .faults import Fault, FaultKind, FaultQueue, ListingFaults, ListingKind, ListingTarget, ShortListing
from .latency import DEFAULT_LATENCIES, LatencyModel
from .parts_lists import (
    BROKEN_KINDS,
    PartsListCache,
    PartsListSource,
    broken_parts_list,
    build_parts_list,
    cut_short,
)
from .sessions import FirstSelectFaults, Navigator, Session, SessionStore
from .tree import Elevation, LogikalTree

ENDPOINTS: frozenset[str] = frozenset(DEFAULT_LATENCIES)


@dataclass
class LogikalSandboxConfig:
    """The sandbox's world (its seed and size) and switches for LogiKal's unknown behaviours and faults."""

    seed: int = 11
    """Seeds the tree, the latency model and the random faults: the same seed, the same run."""
    root_directories: int = 2
    directory_depth: int = 2
    """Levels of directories counting the roots: 1 = the roots alone, 2 = roots and their children
    (`subdirectories_per_directory` each), and so on."""
    subdirectories_per_directory: int = 2
    projects_per_directory: int = 2
    phases_per_project: int = 2
    """Phases of each generated project, counting phase 1: the all-zero GUID default phase that
    every project has."""
    elevations_per_phase: int = 3
    username: str = "sandbox"
    password: str = "sandbox"
    """The one account `POST /auth` accepts."""
    time_scale: float = 0.0
    """Multiplier on the latency model: 1.0 = the real latencies, 0 = none."""
    allow_sibling_elevation_select: bool = True
    """Whether POST /elevations/select works from elevation state (for a sibling in the same
    phase); when False only a new login reaches the next one."""
    sibling_refusal_status: int = 409
    """How a refused sibling select answers: 409 "isn't valid in the current mapping" (as sideways
    directory selects do) or 405 "expects the session to be in a phase" (the spec's text for that
    call's 405). Which one LogiKal sends is unknown (docs/logikal-api.md §5)."""
    first_select_answer_lost: bool = False
    """The first select of each target (directory path, project, phase of a project, elevation) is
    applied, then the connection closes without an answer: does a client replay its route, or retry
    blindly from a state it cannot see?"""
    first_select_not_found: bool = False
    """The first select of each existing target answers 404 once: does a client confirm a
    disappearance before it marks a whole subtree deleted?"""
    select_applied_error_status: int | None = None
    """The first select of each target in `select_applied_error_share` (picked by a stable hash with
    the seed) is applied, then a gateway answers this status (502 or 504): does a client replay its
    route, or retry blindly and misread the 405/409 it gets?"""
    select_applied_error_share: float = 1.0
    directory_cycle: Literal["self", "ancestor"] | None = None
    """A directory listing that names more than the directory's children: "self" makes the listing
    of the deepest directory of the first branch name that directory itself, "ancestor" the
    branch's root. The truth (`directories()`) stays a tree."""
    token_ttl_seconds: float | None = None
    """Absolute token lifetime from login; None = tokens never expire on their own."""
    parts_list_target_bytes: int = 900_000
    parts_list_cache_entries: int = 32
    bump_project_changed_date: bool = False
    """Unknown whether LogiKal bumps a project's changedDate when one of its elevations changes
    (docs/logikal-api.md §8); off by default so a client cannot rely on it."""
    # Random faults, drawn from a generator seeded by `seed` (the same run of draws each time);
    # tests may change them on a running sandbox (`sandbox.config.x = …`), e.g. to 0 to stop them.
    truncated_parts_list_share: float = 0.0
    """Share of parts-list answers whose file is cut short at a random byte, inside a complete
    answer (valid JSON and base64): a download gone wrong that the next fetch gets right."""
    server_error_share: float = 0.0
    """Share of API calls (all but GET /version) answered 500 before any work is done."""

    def __post_init__(self) -> None:
        if self.sibling_refusal_status not in (405, 409):
            raise ValueError(
                f"sibling_refusal_status must be 405 or 409, got {self.sibling_refusal_status!r}"
            )
        status = self.select_applied_error_status
        if status is not None and not 500 <= status <= 599:
            raise ValueError(f"select_applied_error_status must be a 5xx status (502, 504), got {status!r}")
        if not 0 < self.select_applied_error_share <= 1:
            raise ValueError(
                f"select_applied_error_share must be in (0, 1], got {self.select_applied_error_share!r}"
            )
        if self.directory_cycle not in (None, "self", "ancestor"):
            raise ValueError(
                f"directory_cycle must be 'self', 'ancestor' or None, got {self.directory_cycle!r}"
            )

        for name in ("truncated_parts_list_share", "server_error_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)!r}")


@dataclass
class LogikalSandboxStats:
    """The sandbox's counters; `LogikalSandbox.stats` hands out a copy, a snapshot.

    `calls` are keyed by endpoint label, `responses` by label and status
    ("POST /projects/select 200"), "lost" for an answer the server never sent.
    """

    logins: int = 0
    failed_logins: int = 0
    logouts: int = 0
    active_sessions: int = 0  # the session store's count, taken by each snapshot
    max_concurrent_sessions: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    in_flight_requests: int = 0
    max_in_flight_requests: int = 0
    responses: Counter[str] = field(default_factory=Counter)
    parts_lists_served: int = 0
    # Parts-list answers cut short by `truncated_parts_list_share`, and calls `server_error_share` failed.
    parts_lists_truncated: int = 0
    random_server_errors: int = 0
    thumbnails_served: int = 0

    def total_calls(self) -> int:
        return sum(self.calls.values())


class LogikalSandbox:
    def __init__(self, config: LogikalSandboxConfig | None = None, clock: SandboxClock | None = None) -> None:
        self.config = config or LogikalSandboxConfig()
        cfg = self.config
        self.clock = clock or SystemClock()
        self.lock = threading.RLock()
        self.tree = LogikalTree(cfg.seed, self.clock.time)
        self.tree.generate(
            root_directories=cfg.root_directories,
            directory_depth=cfg.directory_depth,
            subdirectories_per_directory=cfg.subdirectories_per_directory,
            projects_per_directory=cfg.projects_per_directory,
            phases_per_project=cfg.phases_per_project,
            elevations_per_phase=cfg.elevations_per_phase,
        )
        self.latency = LatencyModel(time_scale=cfg.time_scale, seed=cfg.seed)
        self.sessions = SessionStore(cfg.token_ttl_seconds, self.clock.monotonic)
        self.navigator = Navigator(
            self.tree,
            cfg.allow_sibling_elevation_select,
            cfg.sibling_refusal_status,
            FirstSelectFaults(
                not_found=cfg.first_select_not_found,
                answer_lost=cfg.first_select_answer_lost,
                applied_error_status=cfg.select_applied_error_status,
                applied_error_share=cfg.select_applied_error_share,
                seed=cfg.seed,
            ),
        )
        if cfg.directory_cycle is not None:
            self._make_directory_cycle(cfg.directory_cycle)
        self.faults = FaultQueue(ENDPOINTS)
        self.listing_faults = ListingFaults()
        self.parts_list_cache = PartsListCache(cfg.parts_list_cache_entries)
        self.login_delay_seconds = 0.0
        self._counters = LogikalSandboxStats()
        # Its own generator, so random faults never shift the tree's or the latency model's draws.
        self._fault_rng = random.Random(cfg.seed * 7919 + 17)

    # -- truth ----------------------------------------------------------------

    def directories(self) -> list[dict[str, Any]]:
        with self.lock:
            return [d.to_api() for d in self.tree.iter_directories()]

    def projects(self, directory_path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            if directory_path is None:
                return [p.to_api() for p in self.tree.projects.values()]
            if directory_path not in self.tree.directories:
                raise KeyError(f"unknown directory {directory_path!r}")
            return [p.to_api() for p in self.tree.projects_in(directory_path)]

    def project_directory(self, project_id: str) -> str:
        with self.lock:
            return self.tree.project(project_id).directory_path

    def phases(self, project_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [phase.to_api() for phase in self.tree.project(project_id).phases]

    def elevations(self, project_id: str, phase_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e.to_api() for e in self.tree.elevations_in(project_id, phase_id)]

    def elevation_location(self, elevation_id: str) -> tuple[str, str, str]:
        """(directory path, project id, phase id) of an elevation."""
        with self.lock:
            elevation = self.tree.elevation(elevation_id)
            project = self.tree.project(elevation.project_id)
            return project.directory_path, project.id, elevation.phase_id

    def all_elevation_ids(self) -> list[str]:
        with self.lock:
            return list(self.tree.elevations)

    def parts_list_bytes(self, elevation_id: str) -> bytes:
        """The decoded file `GET /elevations/selected/parts-list` would serve now."""
        with self.lock:
            source, corrupt = self.parts_list_source(self.tree.elevation(elevation_id))
        return self.render_parts_list(source, corrupt)

    def parts_list_source(self, elevation: Elevation) -> tuple[PartsListSource, str | None]:
        project = self.tree.project(elevation.project_id)
        phase = self.tree.phase(project.id, elevation.phase_id)
        return PartsListSource.of(elevation, project, phase.name), elevation.corrupt

    def render_parts_list(self, source: PartsListSource, corrupt: str | None) -> bytes:
        """The file as the source holds it: broken as `corrupt` says, if it says."""
        target = self.config.parts_list_target_bytes
        key = (source.elevation.id, source.elevation.version_id, target)
        good = self.parts_list_cache.get(key, lambda: build_parts_list(source, target))
        return good if corrupt is None else broken_parts_list(source, good, corrupt)

    def serve_parts_list(self, source: PartsListSource, corrupt: str | None) -> bytes:
        """The file one answer carries: cut short now and then (`truncated_parts_list_share`)."""
        content = self.render_parts_list(source, corrupt)
        with self.lock:
            share = self.config.truncated_parts_list_share
            if not (share and self._fault_rng.random() < share):
                return content
            self._counters.parts_lists_truncated += 1
            return cut_short(content, self._fault_rng)

    def random_server_error(self) -> bool:
        """Whether this call fails with a 500 (`server_error_share`)."""
        with self.lock:
            share = self.config.server_error_share
            if not (share and self._fault_rng.random() < share):
                return False
            self._counters.random_server_errors += 1
            return True

    # -- mutations --------------------------------------------------------------

    def change_elevation(self, elevation_id: str) -> None:
        """New versionId, changedDate = now (Unix s), new parts-list content."""
        with self.lock:
            elevation = self.tree.change_elevation(elevation_id)
            self._touch(elevation.project_id)

    def add_elevation(self, project_id: str, phase_id: str, name: str | None = None) -> str:
        with self.lock:
            elevation = self.tree.add_elevation(project_id, phase_id, name)
            self._touch(project_id)
            return elevation.id

    def recycle_elevation(self, elevation_id: str) -> None:
        """Move to the recycle bin: still listed, with isInRecycleBin=True."""
        with self.lock:
            self.tree.elevation(elevation_id).is_in_recycle_bin = True

    def delete_elevation(self, elevation_id: str) -> None:
        with self.lock:
            elevation = self.tree.delete_elevation(elevation_id)
            self._touch(elevation.project_id)

    def delete_phase(self, project_id: str, phase_id: str) -> list[str]:
        """Delete a phase (not the default one) with its elevations; returns the elevation ids removed."""
        with self.lock:
            phase = self.tree.delete_phase(project_id, phase_id)
            self._touch(project_id)
            return list(phase.elevation_ids)

    def add_project(
        self, directory_path: str, name: str | None = None, phases: int = 1, elevations_per_phase: int = 2
    ) -> str:
        with self.lock:
            return self.tree.add_project(directory_path, name, phases, elevations_per_phase).id

    def recycle_project(self, project_id: str) -> None:
        """Soft-delete: still listed, with isDeleted=True."""
        with self.lock:
            self.tree.project(project_id).is_deleted = True

    def delete_project(self, project_id: str) -> None:
        with self.lock:
            self.tree.delete_project(project_id)

    def add_directory(self, parent_path: str | None, name: str) -> str:
        with self.lock:
            return self.tree.add_directory(parent_path, name)

    def delete_directory(self, path: str) -> list[str]:
        """Delete a directory with everything below it; returns the directory paths removed."""
        with self.lock:
            return self.tree.delete_directory(path)

    def _touch(self, project_id: str) -> None:
        if self.config.bump_project_changed_date:
            self.tree.touch_project(project_id)

    # -- faults -----------------------------------------------------------------

    def expire_token(self, token: str | None = None) -> None:
        """Expire one token, or every live one; their next call answers 401."""
        self.sessions.expire(token)

    def lock_elevation(self, elevation_id: str, locked: bool = True) -> None:
        """While locked, POST /elevations/select answers 409 "in use by another user"."""
        with self.lock:
            self.tree.elevation(elevation_id).locked = locked

    def corrupt_parts_list(self, elevation_id: str, corrupt: bool = True, kind: str = "not_sqlite") -> None:
        """Serve this elevation's parts list broken at the source, the same bytes every time, until it
        changes: `kind` "not_sqlite" (an error text), "truncated" (cut at two thirds) or "damaged"
        (full size, second half garbage); `corrupt=False` serves the good file again."""
        if kind not in BROKEN_KINDS:
            raise ValueError(f"unknown broken parts-list kind {kind!r}; expected one of {BROKEN_KINDS}")
        with self.lock:
            self.tree.elevation(elevation_id).corrupt = kind if corrupt else None

    def list_in_directory(self, path: str | None, listed: str) -> None:
        """From now on the listing of `path` (None: the roots) names the directory `listed` too:
        its own path or an ancestor's makes a cycle. The truth (`directories()`) is unchanged."""
        with self.lock:
            self.tree.list_also(path, listed)

    def _make_directory_cycle(self, kind: str) -> None:
        root = path = self.tree.children[None][0]
        while self.tree.children[path]:
            path = self.tree.children[path][0]
        self.list_in_directory(path, path if kind == "self" else root)

    def fail_select_after_applying(self, identifier: str, status: int = 502) -> None:
        """The next select of `identifier` (a directory path or a GUID) is applied, then a gateway
        answers `status` (502, 504) instead of the server's answer."""
        with self.lock:
            self.navigator.first_select.fail_after_applying(identifier, status)

    def inject_server_errors(self, endpoint: str, times: int = 1, status: int = 500) -> None:
        """The next `times` calls of `endpoint` (e.g. "GET /directories") answer `status`."""
        self.faults.add(endpoint, Fault("error", status=status), times)

    def inject_fault(
        self, endpoint: str, kind: FaultKind, times: int = 1, *, status: int = 500, seconds: float = 0.0
    ) -> None:
        """The next `times` calls of `endpoint` fail as `kind` says (see `faults`):

        "error" (answer `status`), "delay" (extra unscaled seconds), "truncate" (half a body),
        "lost_response" (do the work, then close the connection without answering),
        "applied_error" (do the work, then a gateway answers `status`, e.g. 502), "not_found"
        (a select answers 404 for a target that exists; select endpoints only).
        """
        if kind == "not_found" and not endpoint.endswith("/select"):
            raise ValueError(f"a not_found fault is for select endpoints, not {endpoint!r}")
        self.faults.add(endpoint, Fault(kind, status=status, seconds=seconds), times)

    def short_listing_once(
        self,
        kind: ListingKind,
        *,
        how: ShortListing = "empty",
        share: float | None = None,
        targets: Iterable[ListingTarget] | None = None,
    ) -> list[ListingTarget]:
        """The next `GET /projects` of each target directory, `GET /phases` of each target project, or
        `GET /elevations` of each target phase, answers 200 with an `empty` or `shrunken` (first half)
        list, once; returns the targets.

        `targets` names them ((directory path,) for projects, (project id,) for phases, (project id,
        phase id) for elevations);
        `share` picks that share of every current target instead (at least one), seeded.
        """
        if (share is None) == (targets is None):
            raise ValueError("give either share or targets")
        with self.lock:
            if targets is None:
                assert share is not None
                if not 0 < share <= 1:
                    raise ValueError(f"share must be in (0, 1], got {share!r}")
                every = self._listing_targets(kind)
                chosen = random.Random(f"{self.config.seed}-{kind}").sample(
                    every, max(1, round(share * len(every)))
                )
            else:
                chosen = [tuple(target) for target in targets]
            self.listing_faults.add(kind, chosen, how)
            return sorted(chosen)

    def _listing_targets(self, kind: ListingKind) -> list[ListingTarget]:
        if kind == "projects":
            return sorted((path,) for path, ids in self.tree.projects_by_directory.items() if ids)
        projects = sorted(self.tree.projects.values(), key=lambda p: p.id)
        if kind == "phases":
            return [(project.id,) for project in projects]
        return [(project.id, phase.id) for project in projects for phase in project.phases]

    def served_projects(self, session: Session) -> list[dict[str, Any]]:
        """`GET /projects` as served (see `served_phases`)."""
        projects = self.navigator.list_projects(session)
        assert session.directory_path is not None
        return self.listing_faults.apply("projects", (session.directory_path,), projects)

    def served_phases(self, session: Session) -> list[dict[str, Any]]:
        """`GET /phases` as served: the session's listing, short when a listing fault waits for it."""
        phases = self.navigator.list_phases(session)
        assert session.project_id is not None
        return self.listing_faults.apply("phases", (session.project_id,), phases)

    def served_elevations(self, session: Session) -> list[dict[str, Any]]:
        """`GET /elevations` as served (see `served_phases`)."""
        elevations = self.navigator.list_elevations(session)
        assert session.project_id is not None and session.phase_id is not None
        return self.listing_faults.apply("elevations", (session.project_id, session.phase_id), elevations)

    def set_login_delay(self, seconds: float) -> None:
        """Extra unscaled seconds on every login, on top of the latency model."""
        self.login_delay_seconds = max(seconds, 0.0)

    # -- stats ------------------------------------------------------------------

    @property
    def stats(self) -> LogikalSandboxStats:
        with self.lock:
            c = self._counters
            return replace(
                c,
                calls=Counter(c.calls),
                responses=Counter(c.responses),
                active_sessions=self.sessions.active_count(),
            )

    def reset_stats(self) -> None:
        with self.lock:
            self._counters = LogikalSandboxStats()

    # Hooks for the HTTP layer.

    def record_request_start(self, endpoint: str) -> None:
        with self.lock:
            c = self._counters
            c.calls[endpoint] += 1
            c.in_flight_requests += 1
            c.max_in_flight_requests = max(c.max_in_flight_requests, c.in_flight_requests)

    def record_request_end(self, endpoint: str, status: int | str) -> None:
        """`status` is the answer's status, or "lost" for a connection closed without one."""
        with self.lock:
            c = self._counters
            c.in_flight_requests -= 1
            c.responses[f"{endpoint} {status}"] += 1

    def record_login(self, success: bool) -> None:
        with self.lock:
            c = self._counters
            if success:
                c.logins += 1
                c.max_concurrent_sessions = max(c.max_concurrent_sessions, self.sessions.active_count())
            else:
                c.failed_logins += 1

    def record_logout(self) -> None:
        with self.lock:
            self._counters.logouts += 1

    def record_served(self, what: str) -> None:
        with self.lock:
            if what == "parts_list":
                self._counters.parts_lists_served += 1
            else:
                self._counters.thumbnails_served += 1

"""Where a session stands, where a task needs it, and the calls that get it there.

The MBIOE session is a cursor: root → directory → project → phase →
elevation. From root or directory state any directory can be selected by its
full path; a project only from the directory that holds it; sibling phases
one after another; an elevation from its phase, and from a sibling elevation
only if the server allows it. Nothing goes back up: the only way out of a
project is a new login (docs/logikal-api.md §5). `route` encodes exactly these rules, so the
pool and the planner never send a call the server would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# The project center itself: the target of listing the root directories.
ROOT = ""


class State(Enum):
    LOGGED_OUT = "logged out"
    ROOT = "root"
    DIRECTORY = "directory"
    PROJECT = "project"
    PHASE = "phase"
    ELEVATION = "elevation"


@dataclass(frozen=True)
class Cursor:
    """The server-side selection of one session."""

    state: State = State.LOGGED_OUT
    directory: str | None = None
    project_id: str | None = None
    phase_id: str | None = None
    elevation_id: str | None = None

    def describe(self) -> str:
        if self.state in (State.LOGGED_OUT, State.ROOT):
            return f"{self.state.value} state"
        where = f"directory '{self.directory}'"
        if self.state is State.DIRECTORY:
            return f"directory state ({where})"
        if self.state is State.PROJECT:
            return f"project state (project {self.project_id} in {where})"
        if self.state is State.PHASE:
            return f"phase state (phase {self.phase_id} of project {self.project_id} in {where})"
        return (
            f"elevation state (elevation {self.elevation_id} in phase {self.phase_id} "
            f"of project {self.project_id} in {where})"
        )


@dataclass(frozen=True)
class Target:
    """What a task needs: a session from which its calls are allowed.

    - `directory` only: directory state there (list its children or projects);
      `ROOT` for root state (list the root directories).
    - `project_id`: project or phase state of that project (list or select phases).
    - `phase_id`: phase state of that phase (list its elevations).
    - `phase_id` with `for_elevations`: phase state, or an elevation of that
      phase when siblings may be selected (select elevations, fetch parts lists).
    """

    directory: str
    project_id: str | None = None
    phase_id: str | None = None
    for_elevations: bool = False

    def describe(self) -> str:
        if self.phase_id is not None:
            return f"phase {self.phase_id} of project {self.project_id} in '{self.directory}'"
        if self.project_id is not None:
            return f"project {self.project_id} in '{self.directory}'"
        return f"directory '{self.directory}'"


@dataclass(frozen=True)
class Step:
    """One select call: `kind` is directory, project or phase; `identifier` what to select."""

    kind: str
    identifier: str


def route(cursor: Cursor, target: Target, *, sibling_elevations: bool) -> list[Step] | None:
    """The selects that move `cursor` to `target`, or None when only a new login can."""
    state = cursor.state
    if state is State.LOGGED_OUT:
        return None
    if target.directory == ROOT:
        # The roots are listed only in root state: after any select, a new login.
        return [] if state is State.ROOT else None
    if state in (State.ROOT, State.DIRECTORY):
        steps: list[Step] = []
        if cursor.directory != target.directory or state is State.ROOT:
            steps.append(Step("directory", target.directory))
        if target.project_id is not None:
            steps.append(Step("project", target.project_id))
            if target.phase_id is not None:
                steps.append(Step("phase", target.phase_id))
        return steps
    # Project and deeper: bound to this project for good.
    if target.project_id is None or cursor.project_id != target.project_id:
        return None
    if state in (State.PROJECT, State.PHASE):
        if target.phase_id is None or cursor.phase_id == target.phase_id:
            return []
        return [Step("phase", target.phase_id)]
    # Elevation state: only the next elevation of the same phase, and only if allowed.
    if target.for_elevations and sibling_elevations and cursor.phase_id == target.phase_id:
        return []
    return None

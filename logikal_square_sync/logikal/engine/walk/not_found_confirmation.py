"""A 404 on a select is checked against fresh listings before anything counts as gone.

A select that answers 404 usually means its target was deleted, but nothing
says the server never sends a one-off 404 for a target that exists
(docs/logikal-api.md §11), and taking one at its word marks a whole subtree
deleted: a directory's sub-directories, projects, phases and elevations. So
the session that met the 404 starts afresh (a new login: nothing of the old
server session is trusted) and walks down from the root, listing every level
on the way. The target is gone only when a listing lacks it, or lacks a level
that should hold it. When every listing shows it, the 404 was transient: the
select is made again from the level above, where the walk left the session.
"""

from __future__ import annotations

from collections.abc import Callable

from logikal_square_sync.logikal.engine.client.errors import LogikalError, LogikalNotFoundError
from logikal_square_sync.logikal.engine.client.records import ProjectRecord
from logikal_square_sync.logikal.engine.client.session import LogikalSession

# Walks after the first 404 before giving up: a target that keeps answering 404 while
# every listing shows it is a server problem to report, not a deletion to record.
CONFIRM_ATTEMPTS = 3


class UnconfirmedNotFoundError(LogikalError):
    """Selects keep answering 404 for something every listing still shows."""


def _walk_to_directory(session: LogikalSession, path: str, *, enter: bool) -> bool:
    """True when `path` is listed by its parent, walking down from the root state.

    The session then stands in `path` (`enter`) or in its parent. Each level is
    found among the listed children, never by splitting the path, so a name
    with a slash in it cannot make a live directory look gone.
    """
    current = ""
    while True:
        children = [d.path for d in session.list_directories()]
        if path in children:
            if enter:
                session.select_directory(path)
            return True
        deeper = [c for c in children if path.startswith(c + "/") and len(c) > len(current)]
        if not deeper:
            return False
        current = max(deeper, key=len)
        session.select_directory(current)


def directory_listed(session: LogikalSession, path: str) -> bool:
    """In a fresh session: is `path` listed by its parent? The session stays in the parent."""
    session.restart()
    return _walk_to_directory(session, path, enter=False)


def directory_projects(session: LogikalSession, directory: str) -> list[ProjectRecord] | None:
    """In a fresh session: the projects `directory` lists; None when its parent does not list it.

    The session stays in the directory (or where the walk stopped)."""
    session.restart()
    if not _walk_to_directory(session, directory, enter=True):
        return None
    return session.list_projects()


def project_listed(session: LogikalSession, directory: str, project_id: str) -> bool:
    """In a fresh session: does `directory` list the project? The session stays in the directory."""
    return project_id in {p.id for p in directory_projects(session, directory) or []}


def phase_listed(session: LogikalSession, directory: str, project_id: str, phase_id: str) -> bool:
    """In a fresh session: does the project list the phase? The session stays in project state."""
    if not project_listed(session, directory, project_id):
        return False
    session.select_project(project_id)
    return phase_id in {p.id for p in session.list_phases()}


def elevation_listed(
    session: LogikalSession, directory: str, project_id: str, phase_id: str, elevation_id: str
) -> bool:
    """In a fresh session: does the phase list the elevation? The session stays in phase state."""
    if not phase_listed(session, directory, project_id, phase_id):
        return False
    session.select_phase(phase_id)
    return elevation_id in {e.id for e in session.list_elevations()}


def reach_after_404(
    session: LogikalSession,
    *,
    listed: Callable[[LogikalSession], bool],
    reach: Callable[[LogikalSession], None],
    what: str,
) -> bool:
    """After a select on the way to `what` answered 404: False when a fresh listing confirms it gone,
    True once `reach` has got there after all (from where `listed` left the session).

    Raises `UnconfirmedNotFoundError` when the selects keep answering 404 though
    every listing shows it, so that nothing is marked deleted on their word.
    """
    last: LogikalNotFoundError | None = None
    for _ in range(CONFIRM_ATTEMPTS):
        session.stats.add(confirmations=1)
        try:
            if not listed(session):
                return False
            reach(session)
            return True
        except LogikalNotFoundError as error:
            last = error
    raise UnconfirmedNotFoundError(
        f"{what}: selects answered 404 {CONFIRM_ATTEMPTS + 1} times, yet every listing still shows it "
        f"(last: {last}); nothing was marked deleted"
    ) from last

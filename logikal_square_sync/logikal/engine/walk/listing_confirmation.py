"""A phase or elevation listing that lacks live rows is listed again before anything counts as gone.

One momentarily empty `GET /phases` (or `GET /elevations`) taken at its word
marks every phase and elevation of the project deleted, and the sync then
counts as complete, so nothing would look again until the project is next due.
So a listing that lacks a phase or an elevation the warehouse holds live
(empty, or shrunken) is listed again in a fresh session: a new login that walks
down from the root and lists every level on the way (`not_found_confirmation`;
the server session is a cursor with no way up, and nothing of the session that
got the short answer is trusted). What either listing shows is live; only what
both lack is gone. Logins cost seconds, so a listing that lacks nothing the
warehouse holds live is taken as it is.

What the walk would then mark deleted is held to the deletion limit
(`deletion_limit`, policies.yaml `logikal.deletion_limit`) per project: its
phases against its live phases, and the elevations of the phases still listed
against its live elevations (the elevations of a phase that went count with
their phase: one decision at the source).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TypeVar

from logikal_square_sync.logikal.engine.client.records import ElevationRecord, PhaseRecord
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.store.contents import StoredListing
from logikal_square_sync.logikal.engine.store.tree import StoredProject
from logikal_square_sync.logikal.engine.walk.deletion_limit import check_deletion_limit
from logikal_square_sync.logikal.engine.walk.not_found_confirmation import phase_listed, project_listed
from logikal_square_sync.policies import DeletionLimit

log = logging.getLogger(__name__)

# The op of the multi-asset that syncs a project's contents: its config accepts a mass deletion.
CONTENTS_OP = "logikal_project_contents"

_R = TypeVar("_R", PhaseRecord, ElevationRecord)


def lacks(listed: Iterable[_R], live: Collection[str]) -> list[str]:
    """The live ids that `listed` does not show."""
    ids = {record.id for record in listed}
    return [key for key in live if key not in ids]


def _merge(first: Sequence[_R], again: Sequence[_R]) -> list[_R]:
    """Both listings: the fresh one's records, then what only the first showed (a select confirms it)."""
    fresh = {record.id for record in again}
    merged = list(again)
    merged.extend(record for record in first if record.id not in fresh)
    return merged


def _describe(project: StoredProject) -> str:
    return f"LogiKal project {project.name!r} ({project.id})"


def phases_confirmed(
    session: LogikalSession, project: StoredProject, first: Sequence[PhaseRecord], missing: Sequence[str]
) -> list[PhaseRecord] | None:
    """The phases listed again in a fresh session and merged with `first`; None when the project's
    directory no longer lists the project. The session then stands in the project."""
    session.stats.add(relistings=1)
    log.info(
        f"{_describe(project)}: GET /phases lacks {len(missing)} live phase(s) ({', '.join(missing[:5])}); "
        "listing again in a fresh session before any counts as gone"
    )
    if not project_listed(session, project.directory_path, project.id):
        return None
    session.select_project(project.id)
    return _merge(first, session.list_phases())


def elevations_confirmed(
    session: LogikalSession,
    project: StoredProject,
    phase: PhaseRecord,
    first: Sequence[ElevationRecord],
    missing: Sequence[str],
) -> list[ElevationRecord] | None:
    """The phase's elevations listed again in a fresh session and merged with `first`; None when the
    phase is not listed any more (the session's cursor then says whether the project still was).
    The session then stands in the phase."""
    session.stats.add(relistings=1)
    log.info(
        f"{_describe(project)}, phase {phase.name!r} ({phase.id}): GET /elevations lacks {len(missing)} "
        f"live elevation(s) ({', '.join(missing[:5])}); listing again in a fresh session before any "
        "counts as gone"
    )
    if not phase_listed(session, project.directory_path, project.id, phase.id):
        return None
    session.select_phase(phase.id)
    return _merge(first, session.list_elevations())


def check_listing_deletions(
    stored: StoredListing,
    phases: Sequence[PhaseRecord],
    elevations: Mapping[str, Sequence[ElevationRecord]],
    *,
    project: StoredProject,
    include_elevations: bool,
    limit: DeletionLimit,
    allow_mass_deletion: bool,
) -> None:
    """Raises `MassDeletionError` when writing this listing would mark more of the project deleted
    than the limit allows: the phases always (their elevations go with them), the elevations when
    they are written."""
    listed = {phase.id for phase in phases}
    check = functools.partial(
        check_deletion_limit,
        limit=limit,
        allow_mass_deletion=allow_mass_deletion,
        of=_describe(project),
        op=CONTENTS_OP,
        partition=project.id,
    )
    check(
        asset="logikal/phases",
        noun="phases",
        gone=[f"{name!r} ({key})" for key, name in stored.phases.items() if key not in listed],
        live_before=len(stored.phases),
    )
    if not include_elevations:
        return
    seen = {elevation.id for listing in elevations.values() for elevation in listing}
    gone = [
        f"{name!r} ({key})"
        for phase_id, stored_elevations in stored.elevations.items()
        if phase_id in listed
        for key, name in stored_elevations.items()
        if key not in seen
    ]
    check(
        asset="logikal/elevations",
        noun="elevations",
        gone=gone,
        live_before=stored.elevation_count,
    )

"""Which projects each tick syncs, and which are stale.

A project sync costs at least one login (4.5–9 s) plus the listing, and
LogiKal has no "changed since" filter: a project's elevations can only be
compared by listing them, and whether an elevation edit bumps the project's
`changedDate` is unknown (docs/logikal-api.md §8). So every tick, within a budget of runs:

1. **new / changed**: never synced, or the project's `changed_at` moved past
   the one its last sync saw (the `logikal/projects` listing tells);
2. **active**: changed (project or any of its elevations) within
   `active_for`, and last synced more than the interval ago — held to the
   freshness windows of policies.yaml (`warn_after_minutes` / `fail_after_minutes`);
3. **sweep**: every other project once per `sweep_every`, held to the wider
   dormant windows — this catches edits no listing announced.

Every value comes from policies.yaml (`logikal.project_sync` and the phases, elevations
and parts lists policies) through `ProjectSyncRules` (`policies().logikal.project_sync`).

Within a group the least recently synced go first. Runs already queued or
running are not requested again, nor is a project whose last syncs failed
before its backoff has passed (`logikal.failure_backoff`: exponential in the
failures in a row, capped; `project_failures`). The run queue's priority tag puts force
syncs (priority 0, the UI's default) ahead of all of these.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from logikal_square_sync.logikal.engine.store.contents import (
    UnfetchedElevation,
    unfetched_counts,
    unfetched_elevations,
)
from logikal_square_sync.logikal.engine.syncs.project_failures import FAILURES_PREFIX, parse
from logikal_square_sync.policies import ProjectSyncRules
from logikal_square_sync.warehouse.tables import logikal_elevations, logikal_projects, sync_state

NEW, CHANGED, ACTIVE, SWEEP = "new", "changed", "active", "sweep"
# Dagster run-queue priorities: higher runs first; manual runs have 0.
PRIORITY = {NEW: -1, CHANGED: -1, ACTIVE: -2, SWEEP: -3}
_ORDER = {NEW: 0, CHANGED: 0, ACTIVE: 1, SWEEP: 2}


def duration(delta: timedelta) -> str:
    """A policy's span as the UI shows it: `15 min`, `48 h`, `14 d` (days from three on)."""
    minutes = int(delta.total_seconds() // 60)
    if minutes > 2 * 1440 and minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    return f"{minutes // 60} h" if minutes and minutes % 60 == 0 else f"{minutes} min"


def windows(policy: ProjectSyncRules) -> str:
    """The freshness windows in force, for the UI descriptions of the sensor and the check."""
    return (
        f"Active projects (changed within {duration(policy.active_for)}) are held to warn "
        f"{duration(policy.warn_after)} / fail {duration(policy.fail_after)}, dormant ones to warn "
        f"{duration(policy.dormant_warn_after)} / fail {duration(policy.dormant_fail_after)}."
    )


@dataclass(frozen=True)
class ProjectState:
    id: str
    name: str
    changed_at: datetime | None
    latest_elevation_change: datetime | None
    is_deleted: bool
    contents_synced_at: datetime | None
    contents_changed_at: datetime | None
    discovered_at: datetime
    # Syncs in a row that failed (or left parts lists unfetched), and when the last one did.
    failures: int = 0
    last_failed_at: datetime | None = None
    # When the first of those failures was, and the live elevations without a current parts list.
    failing_since: datetime | None = None
    unfetched_parts_lists: int = 0

    def retry_at(self, policy: ProjectSyncRules) -> datetime | None:
        """When the backoff after the last failure ends (None: no failure to back off from)."""
        if not self.failures or self.last_failed_at is None:
            return None
        return self.last_failed_at + policy.backoff.delay(self.failures)

    def is_active(self, now: datetime, policy: ProjectSyncRules) -> bool:
        changes = [t for t in (self.changed_at, self.latest_elevation_change) if t is not None]
        return not self.is_deleted and bool(changes) and max(changes) >= now - policy.active_for

    def age(self, now: datetime) -> timedelta:
        """Time since the contents were synced (since discovery, if never)."""
        return now - (self.contents_synced_at or self.discovered_at)

    def windows(self, now: datetime, policy: ProjectSyncRules) -> tuple[timedelta, timedelta]:
        if self.is_active(now, policy):
            return policy.warn_after, policy.fail_after
        return policy.dormant_warn_after, policy.dormant_fail_after


def load_project_states(conn: sa.Connection, *, never_synced_only: bool = False) -> list[ProjectState]:
    """Live projects with what the choice needs; deleted ones are never synced again.

    `never_synced_only`: just those whose contents were never synced, without the
    per-project elevation aggregates (they have no elevations yet): the new-project
    sensor's cheap query, run at each of its ticks.
    """
    p, e, s = logikal_projects.c, logikal_elevations.c, sync_state.c
    latest = (
        sa.select(e.project_id, sa.func.max(e.changed_at).label("latest")).group_by(e.project_id).subquery()
    )
    failures = (
        sa.select(s.stream, s.watermark, s.updated_at).where(s.stream.startswith(FAILURES_PREFIX)).subquery()
    )
    unfetched = unfetched_counts()
    query = (
        sa.select(
            p.id,
            p.name,
            p.changed_at,
            sa.null() if never_synced_only else latest.c.latest,
            p.is_deleted,
            p.contents_synced_at,
            p.contents_changed_at,
            p.synced_at,
            failures.c.watermark,
            failures.c.updated_at,
            sa.null() if never_synced_only else unfetched.c.unfetched,
        )
        .select_from(logikal_projects)
        .outerjoin(failures, failures.c.stream == sa.literal(FAILURES_PREFIX) + p.id)
        .where(p.deleted_at.is_(None))
    )
    if never_synced_only:
        query = query.where(p.contents_synced_at.is_(None))
    else:
        query = query.outerjoin(latest, latest.c.project_id == p.id).outerjoin(
            unfetched, unfetched.c.project_id == p.id
        )
    states = []
    for row in conn.execute(query):
        failed = None if row[9] is None else parse(row[8], row[9])
        states.append(
            ProjectState(
                id=row[0],
                name=row[1],
                changed_at=row[2],
                latest_elevation_change=row[3],
                is_deleted=bool(row[4]),
                contents_synced_at=row[5],
                contents_changed_at=row[6],
                discovered_at=row[7],
                failures=failed.count if failed else 0,
                last_failed_at=row[9],
                failing_since=failed.since if failed else None,
                unfetched_parts_lists=row[10] or 0,
            )
        )
    return states


@dataclass(frozen=True)
class DueProject:
    id: str
    name: str
    reason: str

    @property
    def priority(self) -> int:
        return PRIORITY[self.reason]


def _reason(state: ProjectState, now: datetime, policy: ProjectSyncRules) -> str | None:
    if state.contents_synced_at is None:
        return NEW
    if state.changed_at is not None and (
        state.contents_changed_at is None or state.changed_at > state.contents_changed_at
    ):
        return CHANGED
    age = now - state.contents_synced_at
    if state.is_active(now, policy) and age >= policy.interval:
        return ACTIVE
    if age >= policy.sweep_every:
        return SWEEP
    return None


def due_projects(
    states: Iterable[ProjectState],
    now: datetime,
    policy: ProjectSyncRules,
    *,
    in_flight: Collection[str] = (),
) -> list[DueProject]:
    """The projects this tick should sync, most urgent first, at most `max_runs_per_tick`.

    A project still in its failure backoff waits, whatever its reason (a person's force
    sync does not come through here, so it never waits).
    """
    candidates = []
    for state in states:
        if state.id in in_flight:
            continue
        retry_at = state.retry_at(policy)
        if retry_at is not None and now < retry_at:
            continue
        reason = _reason(state, now, policy)
        if reason is not None:
            last = state.contents_synced_at or datetime.min.replace(tzinfo=now.tzinfo)
            candidates.append((_ORDER[reason], last, state.id, DueProject(state.id, state.name, reason)))
    candidates.sort(key=lambda item: item[:3])
    return [item[3] for item in candidates[: policy.max_runs_per_tick]]


@dataclass(frozen=True)
class StaleProject:
    id: str
    name: str
    age: timedelta
    active: bool
    # Parts lists its failing syncs left unfetched (held to the parts-lists windows since the first).
    unfetched_parts_lists: int = 0


@dataclass(frozen=True)
class Staleness:
    checked: int
    warn: list[StaleProject]
    fail: list[StaleProject]
    # Of the stale projects with unfetched parts lists: which elevations (`name_unfetched`).
    unfetched: list[UnfetchedElevation] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.warn and not self.fail

    def describe(self, limit: int = 10) -> str:
        if self.passed:
            return f"All {self.checked} LogiKal projects are within their freshness windows."
        worst = sorted(self.fail + self.warn, key=lambda s: -s.age)[:limit]
        names = ", ".join(f"{s.name} ({_minutes(s.age)}{_unfetched(s)})" for s in worst)
        return (
            f"{len(self.fail)} project(s) past the fail window and {len(self.warn)} past the warn window "
            f"of {self.checked}; the stalest: {names}"
        )


def _unfetched(stale: StaleProject) -> str:
    count = stale.unfetched_parts_lists
    return f", {count} parts list{'s' if count != 1 else ''} unfetched" if count else ""


def _minutes(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _level(age: timedelta, warn_after: timedelta, fail_after: timedelta) -> int:
    return 2 if age > fail_after else 1 if age > warn_after else 0


def staleness(states: Iterable[ProjectState], now: datetime, policy: ProjectSyncRules) -> Staleness:
    """Projects whose contents are older than their warn or fail window.

    Also those whose failing syncs left parts lists unfetched for longer than the
    parts lists' own (tight) windows, counted from the first failure, whether the
    project is active or dormant: that work is known to be missing, not just maybe stale.
    """
    warn: list[StaleProject] = []
    fail: list[StaleProject] = []
    checked = 0
    for state in states:
        checked += 1
        age = state.age(now)
        level = _level(age, *state.windows(now, policy))
        unfetched = state.unfetched_parts_lists if state.failing_since is not None else 0
        if unfetched and state.failing_since is not None:
            unfetched_for = now - state.failing_since
            if (unfetched_level := _level(unfetched_for, policy.warn_after, policy.fail_after)) > level:
                level, age = unfetched_level, max(age, unfetched_for)
        stale = StaleProject(state.id, state.name, age, state.is_active(now, policy), unfetched)
        if level == 2:
            fail.append(stale)
        elif level == 1:
            warn.append(stale)
    return Staleness(checked, warn, fail)


def name_unfetched(conn: sa.Connection, report: Staleness) -> Staleness:
    """`report` with the elevations whose parts lists its stale projects are missing."""
    projects = {s.id for s in report.fail + report.warn if s.unfetched_parts_lists}
    return replace(report, unfetched=unfetched_elevations(conn, projects))

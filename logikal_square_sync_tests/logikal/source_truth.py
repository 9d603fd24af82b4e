"""The LogiKal sandbox's truth and the warehouse's state, in one shape to compare."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_sandbox.logikal import LogikalSandbox


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def source_truth(sandbox: LogikalSandbox) -> dict[str, Any]:
    directories = {
        d["path"]: (d["name"], d["path"].rsplit("/", 1)[0] if "/" in d["path"] else None)
        for d in sandbox.directories()
    }
    projects, phases, elevations, parts = {}, {}, {}, {}
    for p in sandbox.projects():
        projects[p["id"]] = (
            sandbox.project_directory(p["id"]),
            p["name"],
            p["jobNumber"],
            p["offerNumber"],
            p["personInCharge"],
            _utc(p["createdDate"]),
            _utc(p["changedDate"]),
            p["isDeleted"],
        )
        for phase in sandbox.phases(p["id"]):
            phases[(p["id"], phase["id"])] = (phase["name"], phase["description"])
            for e in sandbox.elevations(p["id"], phase["id"]):
                elevations[e["id"]] = (
                    p["id"],
                    phase["id"],
                    e["name"],
                    e["versionId"],
                    e["amount"],
                    e["width"],
                    e["height"],
                    e["systemDescription"],
                    _utc(e["changedDate"]),
                    e["isInRecycleBin"],
                )
                if not e["isInRecycleBin"]:
                    parts[e["id"]] = hashlib.sha256(sandbox.parts_list_bytes(e["id"])).hexdigest()
    return {
        "directories": directories,
        "projects": projects,
        "phases": phases,
        "elevations": elevations,
        "parts_lists": parts,
    }


def warehouse_state(engine: sa.Engine, *, live_only: bool = True) -> dict[str, Any]:
    def live(table: sa.Table) -> sa.ColumnElement[bool]:
        return table.c.deleted_at.is_(None) if live_only else sa.true()

    d, p, ph, e, pl = (
        t.logikal_directories,
        t.logikal_projects,
        t.logikal_phases,
        t.logikal_elevations,
        t.logikal_parts_lists,
    )
    with engine.connect() as conn:
        return {
            "directories": {
                row.path: (row.name, row.parent_path) for row in conn.execute(sa.select(d).where(live(d)))
            },
            "projects": {
                row.id: (
                    row.directory_path,
                    row.name,
                    row.job_number,
                    row.offer_number,
                    row.person_in_charge,
                    row.created_at,
                    row.changed_at,
                    row.is_deleted,
                )
                for row in conn.execute(sa.select(p).where(live(p)))
            },
            "phases": {
                (row.project_id, row.id): (row.name, row.description)
                for row in conn.execute(sa.select(ph).where(live(ph)))
            },
            "elevations": {
                row.id: (
                    row.project_id,
                    row.phase_id,
                    row.name,
                    row.version_id,
                    row.amount,
                    row.width,
                    row.height,
                    row.system_description,
                    row.changed_at,
                    row.is_in_recycle_bin,
                )
                for row in conn.execute(sa.select(e).where(live(e)))
            },
            # Parts lists of live elevations outside the recycle bin: what the source serves now.
            "parts_lists": {
                row.elevation_id: row.sha256
                for row in conn.execute(
                    sa.select(pl.c.elevation_id, pl.c.sha256)
                    .join(e, e.c.id == pl.c.elevation_id)
                    .where(e.c.deleted_at.is_(None), e.c.is_in_recycle_bin.is_(False))
                )
            },
        }


def assert_warehouse_equals_source(engine: sa.Engine, sandbox: LogikalSandbox) -> None:
    truth, stored = source_truth(sandbox), warehouse_state(engine)
    for kind in truth:
        assert stored[kind] == truth[kind], kind


_TREE = ("directories", "projects", "phases", "elevations")
NOTHING_DELETED: dict[str, set[Any]] = {kind: set() for kind in _TREE}


def marked_deleted(engine: sa.Engine) -> dict[str, set[Any]]:
    """The keys of the rows with `deleted_at`, by kind."""
    everything, live = warehouse_state(engine, live_only=False), warehouse_state(engine)
    return {kind: set(everything[kind]) - set(live[kind]) for kind in _TREE}


def table_rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(table))]

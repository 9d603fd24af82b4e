"""The LogiKal sync against the sandbox, on SQLite and PostgreSQL: truth, incrementality, convergence."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.logikal.engine.client.parts_list_parser import FETCH_FAILED, INVALID, PARSED
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import (
    UnknownProjectError,
    sync_project_contents,
)
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.engine.walk.result import ELEVATIONS, PHASES
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync_sandbox.logikal import ZERO_GUID
from logikal_square_sync_tests.logikal.sandbox_runs import MODES, MODES_ON_SQLITE, sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    NOTHING_DELETED,
    assert_warehouse_equals_source,
    marked_deleted,
    table_rows,
    warehouse_state,
)


@pytest.mark.parametrize("sandbox", MODES_ON_SQLITE, indirect=True)
def test_a_full_sync_equals_the_source(logikal, engine, sandbox) -> None:
    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    assert marked_deleted(engine) == NOTHING_DELETED
    assert sandbox.stats.active_sessions == 0
    # Each mode really met what it stands for.
    config, responses = sandbox.config, sandbox.stats.responses
    clients = [result.directories.client, result.projects.client]
    clients += [contents.client for contents in result.contents.values()]
    if not config.allow_sibling_elevation_select:
        assert responses[f"POST /elevations/select {config.sibling_refusal_status}"] >= 1
    if config.first_select_answer_lost:
        lost = sum(count for key, count in responses.items() if key.endswith(" lost"))
        assert lost == sum(client["lost_answers"] for client in clients) >= 20
    if config.first_select_not_found:
        assert sum(client["confirmations"] for client in clients) >= 20
    elevations = sandbox.all_elevation_ids()
    assert result.total("parts_lists_fetched") == len(elevations) == sandbox.stats.parts_lists_served
    assert result.total("parts_lists_failed") == 0
    # Phase ids repeat across projects: every project has the all-zero default phase.
    phases = warehouse_state(engine)["phases"]
    assert sum(1 for _, phase_id in phases if phase_id == ZERO_GUID) == len(sandbox.projects())

    # Files are stored once by content hash; the parsed summary is the elevation's own row.
    rows = {row["elevation_id"]: row for row in table_rows(engine, t.logikal_parts_lists)}
    files = {row["sha256"]: row for row in table_rows(engine, t.logikal_parts_list_files)}
    for elevation_id in elevations:
        row = rows[elevation_id]
        content = files[row["sha256"]]["content"]
        assert hashlib.sha256(content).hexdigest() == row["sha256"]
        assert row["size_bytes"] == len(content) and row["parse_status"] == PARSED, row
        project_id, phase_id, *_ = warehouse_state(engine)["elevations"][elevation_id]
        source = next(e for e in sandbox.elevations(project_id, phase_id) if e["id"] == elevation_id)
        assert row["width_output"] == source["width"]  # not a coupled part's half width
        assert row["auto_description"] == source["automaticDescription"]
        assert row["elevation_version_id"] == source["versionId"]
    glass = table_rows(engine, t.logikal_elevation_glass)
    assert {row["elevation_id"] for row in glass} == set(elevations)


@pytest.mark.parametrize("sandbox", MODES_ON_SQLITE, indirect=True)
def test_a_resync_without_changes_fetches_no_parts_list_and_writes_nothing(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    before = warehouse_state(engine)
    sandbox.reset_stats()

    again = sync_everything(logikal, engine)

    assert sandbox.stats.parts_lists_served == 0
    assert again.total("parts_lists_fetched") == 0
    assert again.total("parts_lists_skipped") == len(sandbox.all_elevation_ids())
    # One login for the tree, one for the project list, one per project: the listing calls only.
    assert sandbox.stats.logins == 2 + len(sandbox.projects())
    for contents in again.contents.values():
        assert contents.client["logins"] == 1
        assert contents.phases.changed == contents.elevations.changed == 0
    assert again.directories.report.changed == again.projects.report.changed == 0
    assert warehouse_state(engine) == before
    assert sandbox.stats.active_sessions == 0


@pytest.mark.parametrize("sandbox", MODES, indirect=True)
def test_the_warehouse_converges_after_changes_at_the_source(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    projects = sorted(p["id"] for p in sandbox.projects())
    first, second, third = projects
    first_phases = [phase["id"] for phase in sandbox.phases(first)]
    changed, recycled = (e["id"] for e in sandbox.elevations(first, first_phases[0]))
    deleted = sandbox.elevations(first, first_phases[1])[0]["id"]
    sandbox.change_elevation(changed)
    sandbox.recycle_elevation(recycled)
    sandbox.delete_elevation(deleted)
    added = sandbox.add_elevation(first, first_phases[1], "New window")
    sandbox.delete_project(second)
    new_directory = sandbox.add_directory(sandbox.project_directory(third), "Annex")
    new_project = sandbox.add_project(new_directory, "FRESH01", phases=2, elevations_per_phase=1)
    sandbox.reset_stats()

    result = sync_everything(logikal, engine)

    assert_warehouse_equals_source(engine, sandbox)
    # Exactly the changed, the added and the new project's elevations were fetched.
    assert sandbox.stats.parts_lists_served == 2 + 2
    assert result.contents[first].parts_lists_fetched == 2
    assert result.projects.new_project_ids == {new_project}
    assert result.projects.vanished_project_ids == [second]
    everything = warehouse_state(engine, live_only=False)
    # Rows that vanished at the source stay, with deleted_at.
    with engine.connect() as conn:
        gone = set(
            conn.execute(
                sa.select(t.logikal_elevations.c.id).where(t.logikal_elevations.c.deleted_at.is_not(None))
            ).scalars()
        )
        project_gone = conn.execute(
            sa.select(t.logikal_projects.c.deleted_at).where(t.logikal_projects.c.id == second)
        ).scalar()
    second_elevations = {key for key, value in everything["elevations"].items() if value[0] == second}
    assert gone == {deleted} | second_elevations and project_gone is not None
    second_phases = {key for key in everything["phases"] if key[0] == second}
    # Exactly what went at the source is marked deleted, nothing else.
    assert marked_deleted(engine) == {
        "directories": set(),
        "projects": {second},
        "phases": second_phases,
        "elevations": {deleted} | second_elevations,
    }
    # The recycled elevation is still listed, flagged, and keeps its parts list.
    assert everything["elevations"][recycled][-1] is True
    assert recycled in {row["elevation_id"] for row in table_rows(engine, t.logikal_parts_lists)}
    assert added in warehouse_state(engine)["parts_lists"]


def test_a_superseded_parts_list_file_is_dropped_once_unreferenced(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    elevation = sandbox.all_elevation_ids()[0]
    old = hashlib.sha256(sandbox.parts_list_bytes(elevation)).hexdigest()
    sandbox.change_elevation(elevation)
    sync_everything(logikal, engine)
    hashes = {row["sha256"] for row in table_rows(engine, t.logikal_parts_list_files)}
    assert old not in hashes
    assert hashlib.sha256(sandbox.parts_list_bytes(elevation)).hexdigest() in hashes


def test_a_file_that_is_not_sqlite_is_recorded_and_the_others_still_sync(logikal, engine, sandbox) -> None:
    broken = sandbox.all_elevation_ids()[1]
    sandbox.corrupt_parts_list(broken)

    result = sync_everything(logikal, engine)

    # The first garbled file is a failed fetch (test_damaged_parts_lists); every other one is stored.
    assert result.total("parts_lists_failed") == 1
    assert result.total("parts_lists_fetched") == len(sandbox.all_elevation_ids()) - 1
    row = next(r for r in table_rows(engine, t.logikal_parts_lists) if r["elevation_id"] == broken)
    assert row["parse_status"] == FETCH_FAILED and "not a SQLite database" in row["parse_error"]
    # The same bytes on the next fetch: recorded as the source serves them, under their own hash.
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)
    row = next(r for r in table_rows(engine, t.logikal_parts_lists) if r["elevation_id"] == broken)
    assert row["parse_status"] == INVALID and "not a SQLite database" in row["parse_error"]
    # An unchanged elevation is not fetched again, garbled or not; a change fetches the good file.
    sandbox.reset_stats()
    sync_everything(logikal, engine)
    assert sandbox.stats.parts_lists_served == 0
    sandbox.change_elevation(broken)
    sync_everything(logikal, engine)
    row = next(r for r in table_rows(engine, t.logikal_parts_lists) if r["elevation_id"] == broken)
    assert row["parse_status"] == PARSED and row["parse_error"] is None
    assert_warehouse_equals_source(engine, sandbox)


def test_a_partial_sync_writes_only_what_was_asked(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project = sorted(p["id"] for p in sandbox.projects())[0]
    phase = sandbox.phases(project)[1]["id"]
    sandbox.add_elevation(project, phase, "Only listed")
    sandbox.reset_stats()
    with logikal.pool() as pool:
        result = sync_project_contents(pool, engine, project, include={PHASES, ELEVATIONS})
    assert result.elevations.inserted == 1 and result.parts_lists_fetched == 0
    assert sandbox.stats.parts_lists_served == 0


def test_an_unknown_project_is_a_clear_error(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    with logikal.pool() as pool, pytest.raises(UnknownProjectError, match="not in the warehouse"):
        sync_project_contents(pool, engine, "00000000-0000-0000-0000-00000000abcd")
    assert sandbox.stats.active_sessions == 0


def test_a_project_back_at_the_source_is_synced_again_as_new(logikal, engine, sandbox) -> None:
    sync_everything(logikal, engine)
    project = sorted(p["id"] for p in sandbox.projects())[0]
    with engine.begin() as conn:  # as if a projects run had missed it (a directory renamed and back)
        for table, column in (
            (t.logikal_projects, "id"),
            (t.logikal_phases, "project_id"),
            (t.logikal_elevations, "project_id"),
        ):
            conn.execute(sa.update(table).where(table.c[column] == project).values(deleted_at=utc_now()))
    with logikal.pool() as pool:
        result = sync_projects(pool, engine)
    assert project in result.new_project_ids
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.logikal_projects).where(t.logikal_projects.c.id == project)).one()
    assert row.deleted_at is None and row.contents_synced_at is None  # the sensor takes it as new
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)

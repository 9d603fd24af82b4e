"""A LogiKal row the warehouse cannot hold is quarantined, never marked deleted, and written once fixed.

Over real HTTP against the LogiKal sandbox, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from logikal_square_sync.warehouse.quarantine import quarantined
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    NOTHING_DELETED,
    assert_warehouse_equals_source,
    marked_deleted,
    source_truth,
    warehouse_state,
)

TYPES = ["directory", "project", "phase", "elevation"]


def test_a_project_the_warehouse_refuses_is_quarantined_and_written_once_renamed(
    logikal, engine, sandbox
) -> None:
    sync_everything(logikal, engine)
    directory = sandbox.directories()[0]["path"]
    bad = sandbox.add_project(directory, name="Fenster\x00Nord")

    sync_everything(logikal, engine)
    (rejected,) = quarantined(engine, "LogiKal", TYPES)
    assert (rejected.object_type, rejected.id) == ("project", bad)
    assert (
        rejected.reason
        == "logikal_projects: name contains a NUL character, which PostgreSQL text cannot hold"
    )
    truth, stored = source_truth(sandbox), warehouse_state(engine)
    assert set(stored["projects"]) == set(truth["projects"]) - {bad}
    assert marked_deleted(engine) == NOTHING_DELETED

    with sandbox.lock:
        sandbox.tree.project(bad).name = "Fenster Nord"
    sync_everything(logikal, engine)
    assert_warehouse_equals_source(engine, sandbox)
    assert quarantined(engine, "LogiKal", TYPES) == []

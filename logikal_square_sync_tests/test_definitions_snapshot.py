"""The code location against its committed snapshot: assets, deps, groups, partitions, freshness
policies, checks, jobs, schedules (cron, targets), sensors and pools.

A change to any of them shows in review as a diff of `definitions_snapshot.json`. After an
intended change, regenerate it and read the diff:

    UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest logikal_square_sync_tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import os

import pytest

from logikal_square_sync.definitions import build_defs
from logikal_square_sync_tests.definitions_snapshot import SNAPSHOT_FILE, render, snapshot


@pytest.fixture
def packaged_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The definitions as the packaged policies.yaml and the default settings make them."""
    for name in ("LSS_POLICIES_FILE", "BACKGROUND_SYNC_ENABLED", "SYNC_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("packaged_defaults")
def test_the_definitions_match_the_committed_snapshot() -> None:
    current = render(snapshot(build_defs()))
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        SNAPSHOT_FILE.write_text(current)
    assert SNAPSHOT_FILE.exists(), f"no {SNAPSHOT_FILE.name}: run with UPDATE_SNAPSHOT=1 to write it"
    assert current == SNAPSHOT_FILE.read_text(), (
        f"the definitions differ from {SNAPSHOT_FILE.name}; if intended, rerun with UPDATE_SNAPSHOT=1 "
        "and commit the file"
    )


@pytest.mark.usefixtures("packaged_defaults")
def test_every_job_schedule_and_sensor_says_what_it_does() -> None:
    defs = build_defs()
    jobs = [job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]
    for definition in [*jobs, *(defs.schedules or []), *(defs.sensors or [])]:
        assert (definition.description or "").strip(), f"{definition.name} has no description for the UI"

"""Long LogiKal syncs tell how far they are: one progress line per step here (`progress_every_page`)."""

from __future__ import annotations

import logging
import re

import pytest

from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.marks import SQLITE_ONLY

LINE = re.compile(
    r"^(?P<what>LogiKal [^:]+): (?P<steps>\d+)(?: of (?P<total>\d+))? (?P<unit>[a-z ]+), "
    r"(?P<count>\d+) (?P<noun>[a-z ]+) in [\d a-z]+(?: \([\d.,]+ [a-z ]+/s\))?"
    r"(?:; (?P<percent>\d+)% done(?:, about [\d a-z]+ left)?)?$"
)


def _progress(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    return [match for record in caplog.records if (match := LINE.match(record.getMessage()))]


@pytest.mark.usefixtures("progress_every_page")
@SQLITE_ONLY
def test_directories_projects_and_each_project_log_their_progress(logikal, engine, sandbox, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="logikal_square_sync"):
        result = sync_everything(logikal, engine)
    lines = _progress(caplog)

    directories = [line for line in lines if line["what"] == "LogiKal directories"]
    # A listing of the roots and of every directory, each found once.
    found = result.directories.report.read
    assert [int(line["steps"]) for line in directories] == list(range(1, found + 2))
    assert int(directories[-1]["count"]) == found and directories[-1]["total"] is None

    projects = [line for line in lines if line["what"] == "LogiKal projects"]
    assert [(int(line["steps"]), int(line["total"])) for line in projects] == [
        (listed, found) for listed in range(1, found + 1)
    ]
    assert int(projects[-1]["count"]) == result.projects.report.read and projects[-1]["percent"] == "100"

    for project_id, contents in result.contents.items():
        mine = [line for line in lines if f"({project_id})" in line["what"]]
        due = contents.parts_lists_fetched + contents.parts_lists_failed
        assert [(int(line["steps"]), int(line["total"])) for line in mine] == [
            (done, due) for done in range(1, due + 1)
        ]
        assert int(mine[-1]["count"]) == contents.parts_lists_fetched and mine[-1]["percent"] == "100"
        assert {line["unit"] for line in mine} == {"elevations done"}
    listed = [record.getMessage() for record in caplog.records if "parts list(s) due" in record.getMessage()]
    assert len(listed) == len(result.contents)

"""Force sync: project names resolved through the warehouse, and a run through a live Dagster.

The end-to-end test starts a real `dagster-webserver` and `dagster-daemon`
(temp DAGSTER_HOME with the project's dagster.yaml on SQLite storage, as the demo
writes it: queued runs, one run per project at a time), serves the LogiKal sandbox from this process, and runs
`python -m logikal_square_sync.interfaces.force_sync --wait` against them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from logikal_square_sync.interfaces.force_sync import (
    ProjectLookupError,
    describe_warehouse,
    main,
    resolve_project,
)
from logikal_square_sync.warehouse.tables import logikal_projects
from logikal_square_sync_tests.clock import ANCHOR

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
A, B, C = (f"{n}0000000-0000-4000-8000-000000000000" for n in (1, 2, 3))


def _project(project_id: str, name: str, directory: str, *, deleted: bool = False) -> dict:
    now = ANCHOR
    return {
        "id": project_id,
        "directory_path": directory,
        "name": name,
        "job_number": f"J-{name}",
        "is_deleted": False,
        "synced_at": now,
        "deleted_at": now if deleted else None,
    }


@pytest.fixture
def named_projects(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(logikal_projects),
            [
                _project(A, "DOS22309", "Demo"),
                _project(B, "Kitchen", "Demo/Sub 1"),
                _project(C, "Kitchen", "Archive"),
                _project("40000000-0000-4000-8000-000000000000", "Gone", "Demo", deleted=True),
            ],
        )
    return engine


def test_projects_resolve_by_guid_name_or_case_insensitive_name(named_projects) -> None:
    assert resolve_project(named_projects, A.upper()).id == A
    assert resolve_project(named_projects, "DOS22309").id == A
    assert resolve_project(named_projects, " dos22309 ").id == A


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Kitchen", r"2 LogiKal projects are named 'Kitchen': .*'Demo/Sub 1'.*'Archive'.*Pass the GUID"),
        ("DOS2230", r"no LogiKal project named 'DOS2230' in the \w+ warehouse .*\. Did you mean: DOS22309\?"),
        ("Gone", r"no LogiKal project named 'Gone'"),
        ("40000000-0000-4000-8000-000000000000", r"Gone .* was deleted at the source"),
        ("50000000-0000-4000-8000-000000000000", r"no LogiKal project 5.* materialize logikal/projects"),
    ],
)
def test_unknown_or_ambiguous_projects_are_clear_errors(named_projects, text, message) -> None:
    with pytest.raises(ProjectLookupError, match=message):
        resolve_project(named_projects, text)


def test_the_command_exits_2_on_a_bad_name_before_contacting_dagster(
    named_projects, warehouse_url, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    code = main(["--project", "Kitchen", "--dagster-url", "http://127.0.0.1:9"])
    assert code == 2 and "Pass the GUID" in capsys.readouterr().err


def test_no_match_names_the_warehouse_searched_but_never_its_secrets(
    named_projects, warehouse_url, capsys, monkeypatch
) -> None:
    url = "postgresql+psycopg2://lss:S3cret-pw@db.internal:5433/warehouse?sslpassword=Other-secret"
    assert describe_warehouse(url) == "the postgresql warehouse database 'warehouse' on db.internal:5433"
    monkeypatch.setenv("WAREHOUSE_URL", warehouse_url)
    assert main(["--project", "Nope", "--dagster-url", "http://127.0.0.1:9"]) == 2
    error = capsys.readouterr().err
    assert f"no LogiKal project named 'Nope' in {describe_warehouse(warehouse_url)}." in error
    assert warehouse_url not in error


def test_every_option_has_help_and_the_url_is_not_an_option(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for option in ("--project", "--wait", "--timeout", "--refetch-parts-lists", "--dagster-url"):
        assert option in text
    assert "--warehouse-url" not in text and "never printed" in text


# The command end to end (a force sync by name through the webserver's GraphQL and the
# daemon's queue, the warehouse then equal to the sandbox) runs in the production topology:
# deploy/test_topology.py.

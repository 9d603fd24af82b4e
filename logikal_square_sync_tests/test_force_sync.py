"""Force sync: project names resolved through the warehouse, and a run through a live Dagster.

The end-to-end test starts a real `dagster-webserver` and `dagster-daemon`
(temp DAGSTER_HOME with the project's dagster.yaml on SQLite storage, as the demo
writes it: queued runs, one run per project at a time), serves the LogiKal sandbox from this process, and runs
`python -m logikal_square_sync.force_sync --wait` against them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from logikal_square_sync.demo import write_local_instance_yaml
from logikal_square_sync.force_sync import ProjectLookupError, describe_warehouse, main, resolve_project
from logikal_square_sync.logikal.client import ConnectionSettings
from logikal_square_sync.logikal.pool import SessionPool
from logikal_square_sync.logikal.sync_directories import sync_directories
from logikal_square_sync.logikal.sync_projects import sync_projects
from logikal_square_sync.sandbox.logikal import BASE_PATH, LogikalSandbox, create_app
from logikal_square_sync.sandbox.server import free_port, serve_in_thread
from logikal_square_sync.warehouse.engine import warehouse_engine
from logikal_square_sync.warehouse.tables import logikal_elevations, logikal_parts_lists, logikal_projects
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.logikal.conftest import sandbox_config

ROOT = Path(__file__).resolve().parents[1]
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


# --- end to end -----------------------------------------------------------------------


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def dagster(tmp_path: Path, logikal_env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """A webserver and a daemon on a temp instance; yields the webserver URL and DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_local_instance_yaml(home)
    # Create the instance's storage once: the webserver, the daemon and the code server would
    # otherwise race to initialise the same fresh SQLite files.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    # The LogiKal definitions with the warehouse resource the top-level definitions add.
    location = tmp_path / "location.py"
    location.write_text(
        "import dagster as dg\n"
        "from logikal_square_sync.logikal import definitions as logikal\n"
        "from logikal_square_sync.warehouse.resource import warehouse_resource_from_env\n"
        "defs = dg.Definitions.merge(\n"
        "    logikal.defs, dg.Definitions(resources={'warehouse': warehouse_resource_from_env()})\n"
        ")\n"
    )
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_file:\n      relative_path: {location}\n      working_directory: {ROOT}\n"
    )
    env = {**os.environ, **logikal_env, "DAGSTER_HOME": str(home)}
    port = free_port()
    log = (tmp_path / "dagster.log").open("w")
    commands = [
        [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
    ]
    processes = [
        subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        for command in commands
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert all(p.poll() is None for p in processes), (tmp_path / "dagster.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Dagster webserver did not start"
            time.sleep(0.5)
        yield url, home
    finally:
        for process in processes:
            _stop(process)
        log.close()


@pytest.fixture
def logikal_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    sandbox = LogikalSandbox(sandbox_config())
    with serve_in_thread(create_app(sandbox)) as served:
        yield {
            "LOGIKAL_BASE_URL": served.url + BASE_PATH,
            "LOGIKAL_USERNAME": sandbox.config.username,
            "LOGIKAL_PASSWORD": sandbox.config.password,
            "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.sqlite'}",
            # Nothing runs by itself: the only run is the one we submit.
            "BACKGROUND_SYNC_ENABLED": "false",
        }


@pytest.mark.slow
@pytest.mark.xdist_group("dagster-webserver")
def test_a_force_sync_goes_through_the_run_queue_and_completes(logikal_env, dagster) -> None:
    env, (url, home) = logikal_env, dagster
    engine = warehouse_engine(env["WAREHOUSE_URL"])
    settings = ConnectionSettings(env["LOGIKAL_BASE_URL"], env["LOGIKAL_USERNAME"], env["LOGIKAL_PASSWORD"])
    with SessionPool(settings, 1) as pool:
        sync_directories(pool, engine)
    with SessionPool(settings, 1) as pool:
        projects = sync_projects(pool, engine)
    with engine.connect() as conn:
        project_id, name = conn.execute(
            sa.select(logikal_projects.c.id, logikal_projects.c.name).order_by(logikal_projects.c.id).limit(1)
        ).one()

    command = [sys.executable, "-m", "logikal_square_sync.force_sync", "--project", name, "--wait"]
    command += ["--dagster-url", url, "--timeout", "120"]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr + (home.parent / "dagster.log").read_text()[-4000:]
    assert f"Submitted force sync of LogiKal project {name} ({project_id}" in done.stdout
    assert "SUCCESS" in done.stdout
    assert "logikal/parts_lists: rows_changed=4, parts_lists_fetched=4, parts_lists_skipped=0" in done.stdout
    with engine.connect() as conn:
        synced = conn.execute(
            sa.select(sa.func.count())
            .select_from(
                logikal_parts_lists.join(
                    logikal_elevations, logikal_elevations.c.id == logikal_parts_lists.c.elevation_id
                )
            )
            .where(
                logikal_elevations.c.project_id == project_id, logikal_parts_lists.c.parse_status == "parsed"
            )
        ).scalar()
        contents_synced = conn.execute(
            sa.select(logikal_projects.c.contents_synced_at).where(logikal_projects.c.id == project_id)
        ).scalar()
    assert synced == 4 and contents_synced is not None
    assert len(projects.live_project_ids) == 3

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
        run = record.dagster_run
        assert run.job_name == "logikal_project_sync" and run.tags["dagster/partition"] == project_id
        assert run.status == dg.DagsterRunStatus.SUCCESS
        # Through the queue, like the UI's button: enqueued, then dequeued by the daemon.
        assert instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED).records

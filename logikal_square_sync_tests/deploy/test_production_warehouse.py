"""The warehouse in production, as processes on PostgreSQL: required, migrated by init alone, named.

The processes get what the containers get: the repository's dagster.yaml in DAGSTER_HOME
(Dagster's storage on a throw-away PostgreSQL database), the image's entrypoint
`deploy/commands.sh`, and a warehouse URL carrying a password (the test PostgreSQL trusts
every login, so any password connects) that must show up nowhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from alembic import command

from logikal_square_sync.warehouse.connections import HEAD_REVISION, alembic_config, create_warehouse_engine
from logikal_square_sync.warehouse.location import describe_warehouse
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig
from logikal_square_sync_sandbox.square import create_app as square_app
from logikal_square_sync_tests.deploy.compose import BIN, ROOT, compose_commands, container_environment
from logikal_square_sync_tests.deploy.processes import environment
from logikal_square_sync_tests.postgres import throwaway_databases

pytestmark = [pytest.mark.postgres]

PASSWORD = "warehouse-Pa55-never-shown"
SQUARE = SquareSandboxConfig(seed=5, locations=3, orders=10, items=2, categories=1, history_days=2)
# The revision before HEAD_REVISION: a warehouse the previous release left.
PREVIOUS_REVISION = "0002"


@dataclass
class Production:
    env: dict[str, str]
    home: Path
    cwd: Path
    warehouse_url: str  # with the password

    def run(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            env=env or self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def materialize(self, selection: str) -> subprocess.CompletedProcess[str]:
        """A run in its own process on the production instance, as a run worker executes one."""
        module = ["-m", "logikal_square_sync.definitions"]
        return self.run(str(BIN / "dagster"), "asset", "materialize", "--select", selection, *module)

    def instance(self) -> dg.DagsterInstance:
        with environment(self.env):
            return dg.DagsterInstance.from_config(str(self.home))


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Production]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # what the image does
    sandbox = SquareSandbox(SQUARE)
    with (
        throwaway_databases("dagster", "warehouse") as (dagster_db, warehouse_db),
        serve_in_thread(square_app(sandbox)) as square,
    ):
        warehouse_url = warehouse_db.set(password=PASSWORD).render_as_string(hide_password=False)
        env = {
            **container_environment(home, dagster_db),
            "LSS_DATA_DIR": str(tmp_path / "data"),  # where the refused SQLite default would go
            "WAREHOUSE_URL": warehouse_url,
            "SQUARE_BASE_URL": square.url,
            "SQUARE_ACCESS_TOKEN": sandbox.config.access_token,
            "BACKGROUND_SYNC_ENABLED": "false",
        }
        yield Production(env=env, home=home, cwd=tmp_path, warehouse_url=warehouse_url)


def _revisions(url: str) -> list[str]:
    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def _migrate_to(url: str, revision: str) -> None:
    engine = create_warehouse_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


def test_without_warehouse_url_the_code_location_does_not_load(production: Production) -> None:
    """What the code server does first: Dagster loads the definitions, and refuses."""
    env = {k: v for k, v in production.env.items() if k != "WAREHOUSE_URL"}
    env["WAREHOUSE_URI"] = production.warehouse_url  # a typo: named in the message, never its value
    init = production.run(*compose_commands()["init"], env=env)
    assert init.returncode != 0
    assert "WAREHOUSE_URL is not set" in init.stderr and "WAREHOUSE_URI is set" in init.stderr, init.stderr
    validate = ["definitions", "validate", "-m", "logikal_square_sync.definitions"]
    done = production.run(sys.executable, "-m", "dagster", *validate, env=env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "WAREHOUSE_URL is not set, and Dagster's storage is a database server" in output, output[-4000:]
    assert str(production.home / "dagster.yaml") in output
    for shown in (init.stdout + init.stderr, output):
        assert PASSWORD not in shown
    assert not (production.cwd / "data").exists()  # no SQLite warehouse was made


def test_only_init_migrates_the_warehouse_and_runs_name_it_without_the_password(
    production: Production,
) -> None:
    # The previous release's schema, and Dagster's storage as its init left it.
    _migrate_to(production.warehouse_url, PREVIOUS_REVISION)
    storage = production.run(str(BIN / "dagster"), "instance", "migrate")
    assert storage.returncode == 0, storage.stdout + storage.stderr

    # A run of this release before its init ran: it fails saying what to do, and changes nothing.
    early = production.materialize("square/locations")
    output = early.stdout + early.stderr
    assert early.returncode != 0
    expected = f"is at schema revision {PREVIOUS_REVISION}; this code needs revision {HEAD_REVISION}"
    assert expected in output and "run `deploy/commands.sh init`" in output, output[-4000:]
    assert _revisions(production.warehouse_url) == [PREVIOUS_REVISION]
    with production.instance() as instance:
        (failed,) = instance.get_runs()
        assert failed.status == dg.DagsterRunStatus.FAILURE
        failures = instance.get_records_for_run(failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        (failure,) = [record.event_log_entry.dagster_event for record in failures.records]
        assert failure is not None and expected in str(failure.step_failure_data.error)

    # The init role, as compose's `init` service runs it: Dagster's storage, then the warehouse.
    init = production.run(*compose_commands()["init"])
    assert init.returncode == 0, init.stdout + init.stderr
    shown = describe_warehouse(production.warehouse_url)
    assert shown == f"postgresql://{sa.make_url(production.warehouse_url).host}:5432/" + str(
        sa.make_url(production.warehouse_url).database
    )
    assert f"warehouse {shown}: schema at revision {HEAD_REVISION} (was: {PREVIOUS_REVISION})" in init.stdout
    assert _revisions(production.warehouse_url) == [HEAD_REVISION]

    # Now the run goes through, and its materialization names the warehouse, not the password.
    done = production.materialize("square/locations")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    with production.instance() as instance:
        ok = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        (run,) = ok
        materialization = instance.get_latest_materialization_event(dg.AssetKey(["square", "locations"]))
        assert materialization is not None and materialization.run_id == run.run_id
        metadata = materialization.asset_materialization.metadata  # type: ignore[union-attr]
        assert metadata["warehouse"] == dg.MetadataValue.text(shown)
        assert metadata["dagster/row_count"].value == SQUARE.locations
        everything = [
            repr(run),
            *(repr(event) for r in instance.get_runs() for event in instance.all_logs(r.run_id)),
        ]
    for text in (*everything, storage.stdout, storage.stderr, early.stdout, early.stderr, init.stdout,
                 init.stderr, done.stdout, done.stderr):  # fmt: skip
        assert PASSWORD not in text

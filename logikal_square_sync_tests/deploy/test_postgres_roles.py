"""deploy/postgres-roles.sql and compose's deploy/postgres-init.sh against the real PostgreSQL.

Dagster's storage and the warehouse each get a role that owns its database and nothing else:
the warehouse role runs our Alembic migrations, Dagster's role creates Dagster's own storage,
neither can connect to the other's database. The test server trusts local connections, so the
passwords are not checked here, only that the script sets them from the environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from logikal_square_sync.warehouse.connections import create_warehouse_engine, warehouse_engine
from logikal_square_sync_tests.deploy.connections import refusal
from logikal_square_sync_tests.postgres import POSTGRES_ADMIN_URL, reachable_postgres_admin

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "postgres-roles.sql"
pytestmark = pytest.mark.postgres


@dataclass
class Names:
    dagster_role: str
    dagster_db: str
    warehouse_role: str
    warehouse_db: str
    reader_role: str
    erp_login: str
    manager: str


@pytest.fixture
def admin() -> Iterator[sa.Engine]:
    engine = reachable_postgres_admin()
    yield engine
    engine.dispose()


@pytest.fixture
def names(admin: sa.Engine) -> Iterator[Names]:
    tag = uuid.uuid4().hex[:8]
    made = Names(
        *(f"lss_t{tag}_{part}" for part in ("dagster", "dagsterdb", "wh", "whdb", "reader", "erp", "manager"))
    )
    yield made
    with admin.connect() as conn:
        for database in (made.dagster_db, made.warehouse_db):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        for role in (made.erp_login, made.reader_role, made.warehouse_role, made.dagster_role, made.manager):
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


def _libpq_env(**extra: str) -> dict[str, str]:
    url = sa.make_url(POSTGRES_ADMIN_URL)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(
        PGHOST=url.host or "127.0.0.1", PGPORT=str(url.port or 5432), PGUSER=url.username or "postgres"
    )
    if url.password:
        env["PGPASSWORD"] = url.password
    env.update(extra)
    return env


def _run_script(
    names: Names,
    *,
    passwords: bool = True,
    parts: tuple[str, ...] = ("dagster", "warehouse"),
    as_role: str | None = None,
) -> subprocess.CompletedProcess[str]:
    args = ["psql", "-X", "-d", sa.make_url(POSTGRES_ADMIN_URL).database or "postgres", "-f", str(SCRIPT)]
    for part in parts:
        args += [
            "-v",
            f"{part}_role={getattr(names, part + '_role')}",
            "-v",
            f"{part}_db={getattr(names, part + '_db')}",
        ]
    args += ["-v", f"reader_role={names.reader_role}"]
    env = (
        _libpq_env(DAGSTER_PG_PASSWORD="dagster-pw", LSS_WAREHOUSE_PASSWORD="warehouse-pw")
        if passwords
        else _libpq_env()
    )
    if as_role:
        env["PGUSER"] = as_role
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


def _url(role: str, database: str) -> str:
    return (
        sa.make_url(POSTGRES_ADMIN_URL)
        .set(username=role, password=None, database=database)
        .render_as_string(hide_password=False)
    )


def _owners(url: str) -> set[str]:
    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    sa.text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
            )
    finally:
        engine.dispose()


def test_each_role_owns_its_database_and_reaches_no_other(admin: sa.Engine, names: Names) -> None:
    done = _run_script(names)
    assert done.returncode == 0, done.stderr

    # The warehouse role runs the migrations (the init role's Alembic upgrade) and owns every table.
    warehouse_url = _url(names.warehouse_role, names.warehouse_db)
    warehouse = warehouse_engine(warehouse_url)
    warehouse.dispose()
    assert _owners(warehouse_url) == {names.warehouse_role}

    # Dagster's role creates Dagster's own storage (what `dagster instance migrate` does).
    dagster_url = _url(names.dagster_role, names.dagster_db)
    for storage in (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage):
        storage(dagster_url).dispose()
    assert _owners(dagster_url) == {names.dagster_role}

    assert "permission denied" in refusal(_url(names.warehouse_role, names.dagster_db))
    assert "permission denied" in refusal(_url(names.dagster_role, names.warehouse_db))
    with admin.connect() as conn:
        attributes = conn.execute(
            sa.text(
                "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword IS NOT NULL"
                " FROM pg_authid WHERE rolname = ANY(:names) ORDER BY rolname"
            ),
            {"names": [names.dagster_role, names.warehouse_role, names.reader_role]},
        ).all()
    assert sorted(attributes) == sorted(
        [
            (names.dagster_role, False, False, False, True, True),
            (names.warehouse_role, False, False, False, True, True),
            (names.reader_role, False, False, False, False, False),
        ]
    )


def test_a_managed_servers_admin_without_superuser_can_run_it(admin: sa.Engine, names: Names) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{names.manager}" LOGIN CREATEROLE CREATEDB'))
    done = _run_script(names, as_role=names.manager)
    assert done.returncode == 0, done.stderr
    warehouse_url = _url(names.warehouse_role, names.warehouse_db)
    warehouse_engine(warehouse_url).dispose()
    assert _owners(warehouse_url) == {names.warehouse_role}
    assert "permission denied" in refusal(_url(names.warehouse_role, names.dagster_db))
    assert _run_script(names, as_role=names.manager).returncode == 0  # and again


def test_the_reader_role_reads_every_warehouse_table_and_writes_none(admin: sa.Engine, names: Names) -> None:
    assert _run_script(names).returncode == 0
    # Tables the migrations create after the script ran are readable too (default privileges).
    warehouse_engine(_url(names.warehouse_role, names.warehouse_db)).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{names.erp_login}" LOGIN IN ROLE "{names.reader_role}"'))
    erp = create_warehouse_engine(_url(names.erp_login, names.warehouse_db))
    try:
        with erp.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM square_orders")).scalar_one() == 0
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), erp.begin() as conn:
            conn.execute(sa.text("DELETE FROM square_orders"))
    finally:
        erp.dispose()


def test_a_rerun_takes_over_tables_another_role_made(admin: sa.Engine, names: Names) -> None:
    # A warehouse created when one (super)user held both databases: its tables are that user's.
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{names.warehouse_db}"'))
        # ... and a role of that name that may do more than it should.
        conn.execute(sa.text(f'CREATE ROLE "{names.warehouse_role}" CREATEDB CREATEROLE'))
    legacy = create_warehouse_engine(
        sa.make_url(POSTGRES_ADMIN_URL).set(database=names.warehouse_db).render_as_string(hide_password=False)
    )
    try:
        with legacy.begin() as conn:
            conn.execute(sa.text("CREATE TABLE old_rows (id serial PRIMARY KEY)"))
    finally:
        legacy.dispose()
    for _ in range(2):  # converges: the second run changes nothing and succeeds
        done = _run_script(names, parts=("warehouse",))
        assert done.returncode == 0, done.stderr
    url = _url(names.warehouse_role, names.warehouse_db)
    assert _owners(url) == {names.warehouse_role}
    with admin.connect() as conn:
        powers = conn.execute(
            sa.text("SELECT rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = :r"),
            {"r": names.warehouse_role},
        ).one()
    assert tuple(powers) == (False, False, True)
    engine = warehouse_engine(url)  # the migrations run as the warehouse role beside the old table
    engine.dispose()


def test_a_missing_password_stops_the_script_naming_the_variable(admin: sa.Engine, names: Names) -> None:
    done = _run_script(names, passwords=False, parts=("warehouse",))
    assert done.returncode == 3
    assert "LSS_WAREHOUSE_PASSWORD" in done.stderr
    with admin.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": names.warehouse_role}
            ).scalar_one()
            == 0
        )


def _run_init_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Compose's deploy/postgres-init.sh, as the postgres image runs it on an empty volume."""
    return subprocess.run(
        [str(ROOT / "deploy" / "postgres-init.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_init_script_makes_the_warehouse_role_and_database(admin: sa.Engine, names: Names) -> None:
    admin_url = sa.make_url(POSTGRES_ADMIN_URL)
    env = _libpq_env(
        POSTGRES_USER=admin_url.username or "postgres",
        POSTGRES_DB=admin_url.database or "postgres",
        LSS_WAREHOUSE_DB=names.warehouse_db,
        LSS_WAREHOUSE_USER=names.warehouse_role,
    )
    refused = _run_init_script(env)
    assert refused.returncode != 0 and "LSS_WAREHOUSE_PASSWORD" in refused.stderr

    done = _run_init_script({**env, "LSS_WAREHOUSE_PASSWORD": "warehouse-pw"})
    assert done.returncode == 0, done.stderr
    with admin.connect() as conn:
        owner = conn.execute(
            sa.text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d"),
            {"d": names.warehouse_db},
        ).scalar_one()
        superuser = conn.execute(
            sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": names.warehouse_role}
        ).scalar_one()
    assert (owner, superuser) == (names.warehouse_role, False)
    url = _url(names.warehouse_role, names.warehouse_db)
    warehouse_engine(url).dispose()
    assert _owners(url) == {names.warehouse_role}


def test_compose_and_env_example_agree_on_the_warehouse_role() -> None:
    postgres = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["postgres"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in postgres["volumes"] if volume.startswith("./"))
    init_dir = "/docker-entrypoint-initdb.d/"
    assert mounts["./deploy/postgres-init.sh"].startswith(init_dir)
    # The SQL file is given to the init script by path; inside initdb.d the image would run it bare.
    sql_target = mounts["./deploy/postgres-roles.sql"]
    assert postgres["environment"]["LSS_ROLES_SQL"] == sql_target and not sql_target.startswith(init_dir)
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if re.match(r"[A-Z]", line)
    )
    url = sa.make_url(example["WAREHOUSE_URL"])
    assert (url.username, url.password, url.database) == (
        example["LSS_WAREHOUSE_USER"],
        example["LSS_WAREHOUSE_PASSWORD"],
        example["LSS_WAREHOUSE_DB"],
    )
    assert url.username != example["DAGSTER_PG_USER"] and url.host == "postgres"

"""Production refuses the silent default: with Dagster's storage on PostgreSQL, WAREHOUSE_URL is required.

"Production" is Dagster's own storage on a database server, as $DAGSTER_HOME/dagster.yaml
names it (the repository's dagster.yaml); the SQLite default stays for `dagster dev`, the demo
and the tests (no DAGSTER_HOME, or the local copy of dagster.yaml without `storage`). The
processes of the production topology (the code server refusing to load, `deploy/commands.sh
init`, a run worker facing an old schema) are in deploy/test_production_warehouse.py.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.definitions import build_defs
from logikal_square_sync.warehouse.connections import (
    HEAD_REVISION,
    WarehouseNotMigrated,
    create_warehouse_engine,
    migrate,
    schema_revisions,
    warehouse_engine,
)
from logikal_square_sync.warehouse.location import (
    WarehouseNotConfigured,
    default_warehouse_url,
    describe_warehouse,
)
from logikal_square_sync_sandbox.demo import write_local_instance_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME holding the repository's dagster.yaml (PostgreSQL storage), as the image has it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("LSS_DATA_DIR", str(tmp_path / "data"))
    return home


@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_production_without_warehouse_url_fails_the_load_naming_it(
    production_home: Path, monkeypatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv("WAREHOUSE_URL", value)
    with pytest.raises(WarehouseNotConfigured, match=r"^WAREHOUSE_URL is not set") as raised:
        build_defs()
    assert str(production_home / "dagster.yaml") in str(raised.value)
    assert "did you mean" not in str(raised.value)
    assert not (production_home.parent / "data").exists()  # no SQLite file made on the way


def test_production_names_a_misspelt_variable(production_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_URI", "postgresql+psycopg2://lss:pw@db:5432/warehouse")
    with pytest.raises(WarehouseNotConfigured, match="WAREHOUSE_URI is set: did you mean WAREHOUSE_URL?"):
        build_defs()


def test_production_with_warehouse_url_loads(production_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql+psycopg2://lss:pw@db.internal:5432/warehouse")
    defs = build_defs()
    assert defs.resources is not None
    assert defs.resources["warehouse"].url == dg.EnvVar("WAREHOUSE_URL")


@pytest.mark.parametrize("where", ["no DAGSTER_HOME", "local dagster.yaml", "empty DAGSTER_HOME"])
def test_sqlite_storage_keeps_the_sqlite_default(tmp_path: Path, monkeypatch, caplog, where: str) -> None:
    monkeypatch.delenv("WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("LSS_DATA_DIR", str(tmp_path / "data"))
    if where == "no DAGSTER_HOME":
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
    else:
        home = tmp_path / "dagster_home"
        home.mkdir()
        if where == "local dagster.yaml":
            write_local_instance_yaml(home)  # the demo's: the repository's file without `storage`
        monkeypatch.setenv("DAGSTER_HOME", str(home))
    # A look-alike variable only warns here, naming itself and the file written instead.
    monkeypatch.setenv("warehouse_url", "postgresql+psycopg2://lss:pw@db:5432/warehouse")
    with caplog.at_level(logging.WARNING, logger="logikal_square_sync.warehouse.location"):
        defs = build_defs()
    assert defs.resources is not None
    assert defs.resources["warehouse"].url == default_warehouse_url()
    assert default_warehouse_url().startswith(f"sqlite:///{tmp_path / 'data'}")
    (warning,) = [
        r.getMessage() for r in caplog.records if r.name == "logikal_square_sync.warehouse.location"
    ]
    assert "warehouse_url is set: did you mean WAREHOUSE_URL?" in warning
    assert "pw" not in warning


def test_in_production_a_process_checks_the_schema_and_never_migrates_it(
    production_home: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with pytest.raises(
        WarehouseNotMigrated, match=rf"has no schema yet; this code needs revision {HEAD_REVISION}"
    ):
        warehouse_engine(url)
    assert schema_revisions(create_warehouse_engine(url)) == []  # left as it was
    migrate(create_warehouse_engine(url))  # what the init role does
    engine = warehouse_engine(url)  # now at head: the same process goes on, no restart needed
    assert schema_revisions(engine) == [HEAD_REVISION]
    engine.dispose()


def test_an_unreachable_warehouse_is_not_reported_as_unmigrated(production_home: Path) -> None:
    with pytest.raises(sa.exc.OperationalError):
        warehouse_engine("postgresql+psycopg2://postgres@127.0.0.1:1/warehouse")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg2://lss:s3cret-Pa55@db.internal:6432/warehouse?sslmode=verify-full&password=x2",
            "postgresql://db.internal:6432/warehouse",
        ),
        ("postgresql://lss:s3cret-Pa55@db.internal/warehouse", "postgresql://db.internal/warehouse"),
        ("sqlite:////opt/dagster/data/warehouse.sqlite", "sqlite:////opt/dagster/data/warehouse.sqlite"),
    ],
)
def test_the_warehouse_is_described_without_credentials(url: str, shown: str) -> None:
    assert describe_warehouse(url) == describe_warehouse(sa.make_url(url)) == shown
    assert "s3cret" not in shown and "lss" not in shown and "x2" not in shown

"""The README's demo command, end to end: sandbox, webserver, daemon, every asset materialized."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_the_demo_materializes_every_asset(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "logikal_square_sync.demo",
            "--exit-when-done",
            "--port",
            str(_free_port()),
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = (tmp_path / "dagster.log").read_text() if (tmp_path / "dagster.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-4000:]
    assert "All assets materialized." in result.stdout

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        for table in (
            "square_orders",
            "square_catalog_items",
            "square_inventory_counts",
            "logikal_projects",
            "logikal_elevations",
            "logikal_parts_lists",
        ):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() > 0, table
        unparsed = conn.execute(
            sa.text("SELECT count(*) FROM logikal_parts_lists WHERE parse_status <> 'parsed'")
        ).scalar_one()
    assert unparsed == 0

"""Test instances with the `python_logs` of dagster.yaml: the engines' log records reach the event log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from logikal_square_sync_tests.postgres import throwaway_databases

PYTHON_LOGS: dict[str, Any] = yaml.safe_load((Path(__file__).parents[1] / "dagster.yaml").read_text())[
    "python_logs"
]


def instance_for_test(overrides: dict[str, Any] | None = None) -> AbstractContextManager[dg.DagsterInstance]:
    return dg.instance_for_test(overrides={"python_logs": PYTHON_LOGS, **(overrides or {})})


@contextmanager
def postgres_instance_for_test(admin_url: str) -> Iterator[dg.DagsterInstance]:
    """A test instance whose storage is a PostgreSQL database of its own, dropped afterwards."""
    with throwaway_databases("dagster", admin_url=admin_url) as (database,):
        url = database.render_as_string(hide_password=False)
        with instance_for_test({"storage": {"postgres": {"postgres_url": url}}}) as instance:
            yield instance

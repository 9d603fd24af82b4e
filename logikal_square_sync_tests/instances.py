"""Test instances with the `python_logs` of dagster.yaml: the engines' log records reach the event log."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

PYTHON_LOGS: dict[str, Any] = yaml.safe_load((Path(__file__).parents[1] / "dagster.yaml").read_text())[
    "python_logs"
]


def instance_for_test(overrides: dict[str, Any] | None = None) -> AbstractContextManager[dg.DagsterInstance]:
    return dg.instance_for_test(overrides={"python_logs": PYTHON_LOGS, **(overrides or {})})

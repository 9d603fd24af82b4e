"""The `dg` project and the instance files it runs on: the same code location as everything else,
with Dagster's freshness daemon on in every instance config the project ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

import dagster as dg
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_dg_loads_the_module_and_location_that_dagster_dev_and_production_load() -> None:
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    project = tools["dg"]["project"]
    assert tools["dg"]["directory_type"] == "project"
    assert project["root_module"] == "logikal_square_sync"
    assert project["defs_module"] == project["code_location_target_module"] == tools["dagster"]["module_name"]
    assert project["code_location_name"] == tools["dagster"]["code_location_name"]


def test_every_shipped_instance_config_turns_freshness_on_explicitly() -> None:
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance["freshness"] == {"enabled": True}
    # Dagster takes every key of the file (its storage aside: PostgreSQL), the freshness key included.
    with dg.instance_for_test(overrides={k: v for k, v in instance.items() if k != "storage"}):
        pass
    # The chart writes its own instance config and has no key for it: it appends this section.
    helm = yaml.safe_load((ROOT / "deploy" / "helm-values.yaml").read_text())
    assert helm["additionalInstanceConfig"]["freshness"] == instance["freshness"]

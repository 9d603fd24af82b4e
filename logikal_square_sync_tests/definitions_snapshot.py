"""The code location reduced to what review should see change: a stable, readable JSON document.

`test_definitions_snapshot.py` compares it with the committed `definitions_snapshot.json`;
`UPDATE_SNAPSHOT=1` rewrites that file (then read the diff before committing it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy

SNAPSHOT_FILE = Path(__file__).with_name("definitions_snapshot.json")


def _keys(keys: Iterable[dg.AssetKey]) -> list[str]:
    return sorted(key.to_user_string() for key in keys)


def _minutes(delta: Any) -> str:
    delta = delta if isinstance(delta, timedelta) else delta.to_timedelta()  # Dagster's serializable copy
    return f"{delta.total_seconds() / 60:g} min"


def _freshness(policy: Any) -> str | None:
    if policy is None:
        return None
    if isinstance(policy, TimeWindowFreshnessPolicy):
        warn = _minutes(policy.warn_window) if policy.warn_window else "none"
        return f"time window: warn {warn}, fail {_minutes(policy.fail_window)}"
    if isinstance(policy, CronFreshnessPolicy):
        lower = _minutes(policy.lower_bound_delta)
        return f"cron: deadline {policy.deadline_cron} ({policy.timezone}), synced within {lower} before it"
    return dg.serialize_value(policy)


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic:{partitions_def.name}"
    return str(partitions_def)


def _job_assets(defs: dg.Definitions, job_name: str) -> list[str]:
    return _keys(defs.resolve_job_def(job_name).asset_layer.executable_asset_keys)


def snapshot(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": _keys(node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "freshness_policy": _freshness(node.freshness_policy),
            "checks": sorted(check.name for check in node.check_keys),
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "pools": sorted(node.pools or []),
            "table": node.metadata.get("dagster/table_name"),
        }
    jobs = {
        job.name: {
            "assets": _job_assets(defs, job.name),
            "partitions": _partitions(job.partitions_def),
            "tags": dict(sorted(job.tags.items())),
        }
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__")  # Dagster's implicit asset jobs
    }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "assets": _job_assets(defs, schedule.job_name),
            "default_status": schedule.default_status.value,
            "tags": dict(sorted((schedule.tags or {}).items())),
        }
        for schedule in (defs.get_schedule_def(unresolved.name) for unresolved in defs.schedules or [])
    }
    sensors = {
        sensor.name: {
            "job": sensor.job_name if sensor.has_jobs else None,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in defs.sensors or []
    }
    return {
        "assets": dict(sorted(assets.items())),
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": dict(sorted(sensors.items())),
        "resources": sorted(defs.resources or {}),
    }


def render(data: dict[str, Any]) -> str:
    text = json.dumps(data, indent=2)
    # Lists of names on one line: a diff then shows the asset or job whose list changed.
    return (
        re.sub(
            r"\[\s+((?:\"[^\"]*\",?\s*)+)\]",
            lambda m: (
                "["
                + ", ".join(part.strip().rstrip(",") for part in m.group(1).split("\n") if part.strip())
                + "]"
            ),
            text,
        )
        + "\n"
    )

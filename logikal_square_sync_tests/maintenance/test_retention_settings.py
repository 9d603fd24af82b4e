"""Where retention is set: Dagster's tick retention (dagster.yaml, Helm) and `retention` of policies.yaml."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus

from logikal_square_sync.definitions import build_defs
from logikal_square_sync.maintenance.jobs import PURGE_JOB
from logikal_square_sync.maintenance.schedules import PURGE_SCHEDULE, maintenance_schedules
from logikal_square_sync.policies import POLICIES_FILE, PolicyFileError, load_policies
from logikal_square_sync_sandbox.demo import write_local_instance_yaml

ROOT = Path(__file__).parents[2]


def test_every_schedule_and_sensor_tick_is_purged_after_a_while(tmp_path: Path) -> None:
    # The local copy the demo and `dagster dev` use: the production file minus its storage.
    write_local_instance_yaml(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        for kind in (InstigatorType.SCHEDULE, InstigatorType.SENSOR):
            days = instance.get_tick_retention_settings(kind)
            assert set(days) == set(TickStatus) and all(0 < value <= 90 for value in days.values()), kind
        assert instance.get_tick_retention_settings(InstigatorType.SENSOR)[TickStatus.SKIPPED] == 7


def test_helm_carries_the_tick_retention_of_dagster_yaml() -> None:
    ours = yaml.safe_load((ROOT / "dagster.yaml").read_text())["retention"]
    helm = yaml.safe_load((ROOT / "deploy" / "helm-values.yaml").read_text())["retention"]
    assert helm["enabled"] is True
    assert helm["schedule"]["purgeAfterDays"] == ours["schedule"]["purge_after_days"]
    assert helm["sensor"]["purgeAfterDays"] == ours["sensor"]["purge_after_days"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retention: {runs_days: 0}", r"retention\.runs_days: .*greater than or equal to 1"),
        ("retention: {max_runs_per_tick: 0}", r"retention\.max_runs_per_tick: .*greater than 0"),
        ("retention: {cron: hourly}", r"retention: .*cron 'hourly': expected five fields"),
        ("retention: {keep_days: 30}", r"retention\.keep_days: Extra inputs are not permitted"),
    ],
)
def test_a_bad_retention_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    override = tmp_path / "policies.yaml"
    override.write_text(text)
    with pytest.raises(PolicyFileError, match=message):
        load_policies(POLICIES_FILE, override)


@pytest.mark.parametrize(("switch", "expected"), [("true", "RUNNING"), ("false", "STOPPED")])
def test_the_purge_schedule_starts_with_the_other_background_work(
    monkeypatch: pytest.MonkeyPatch, switch: str, expected: str
) -> None:
    monkeypatch.setenv("BACKGROUND_SYNC_ENABLED", switch)
    monkeypatch.setenv("SYNC_TIMEZONE", "Europe/Berlin")
    defs = build_defs()
    schedule = defs.resolve_schedule_def(PURGE_SCHEDULE)
    retention = load_policies().retention
    assert schedule.job_name == PURGE_JOB and schedule.cron_schedule == retention.cron
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.default_status.value == expected
    assert defs.resolve_job_def(PURGE_JOB).tags["dagster/max_runtime"] == str(
        round(retention.max_runtime_minutes * 60)
    )


def test_a_disabled_retention_has_no_schedule(tmp_path: Path) -> None:
    override = tmp_path / "policies.yaml"
    override.write_text("retention: {enabled: false}")
    assert maintenance_schedules(load_policies(POLICIES_FILE, override).retention) == []


def test_a_cron_dagster_refuses_names_the_key(tmp_path: Path) -> None:
    override = tmp_path / "policies.yaml"
    override.write_text("retention: {cron: '0 99 * * *'}")
    with pytest.raises(ValueError, match=r"retention\.cron '0 99 \* \* \*' is not a valid cron"):
        maintenance_schedules(load_policies(POLICIES_FILE, override).retention)

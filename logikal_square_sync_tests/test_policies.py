"""Policies without a redeploy: an operator's file (LSS_POLICIES_FILE) layered over the packaged defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from logikal_square_sync.policies import (
    MAX_RETRIES_TAG,
    MAX_RUNTIME_TAG,
    POLICIES_FILE,
    RETRY_ON_STEP_FAILURE_TAG,
    RETRY_STRATEGY_TAG,
    PolicyFileError,
    deep_merge,
    load_policies,
    max_runtime_tags,
    run_retry_tags,
    shift_cron,
)
from logikal_square_sync_tests.subprocesses import run_python

ROOT = Path(__file__).parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "operator-policies.yaml"
    path.write_text(text)
    return path


def test_an_override_changes_only_what_it_names(tmp_path: Path) -> None:
    defaults = load_policies()
    override = _write(tmp_path, 'square:\n  orders:\n    cron: "30 3 * * *"\n')
    layered = load_policies(POLICIES_FILE, override)
    assert layered.square.orders.cron == "30 3 * * *"
    expected = defaults.model_dump()
    expected["square"]["orders"]["cron"] = "30 3 * * *"
    assert layered.model_dump() == expected


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": [1, 2]}
    merged = deep_merge(base, {"a": {"c": {"e": 4}}, "f": [3]})
    assert merged == {"a": {"b": 1, "c": {"d": 2, "e": 4}}, "f": [3]}
    assert base == {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": [1, 2]}  # untouched


def test_the_session_budget_defaults_to_4_and_an_override_changes_it(tmp_path: Path) -> None:
    assert load_policies(POLICIES_FILE).logikal.sessions.budget == 4
    override = _write(tmp_path, "logikal:\n  sessions:\n    budget: 2\n")
    assert load_policies(POLICIES_FILE, override).logikal.sessions.budget == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("square: {orders: {lookback_hours: 12}}", r"square\.orders: .*lookback_hours must be >= 72"),
        ("logikal: {projects: {warn_after_minutes: 600}}", r"logikal\.projects: .*warn_after_minutes <"),
        ("square: {orders: {max_runtime_minutes: 0}}", r"orders\.max_runtime_minutes: .*greater than 0"),
        ("square: {orders: {crom: '* * * * *'}}", r"square\.orders\.crom: Extra inputs are not permitted"),
        ("logikal: {project_sync: {tick_seconds: soon}}", r"logikal\.project_sync\.tick_seconds: "),
        (
            "alerts: {run_failure_tick_seconds: 1}",
            r"alerts\.run_failure_tick_seconds: .*greater than or equal to 5",
        ),
        ("logikal: {sessions: {budget: 0}}", r"logikal\.sessions\.budget: .*greater than or equal to 1"),
        ("logikal: {sessions: {budget: four}}", r"logikal\.sessions\.budget: .*valid integer"),
        ("logikal: {sessions: {poll_seconds: 0}}", r"logikal\.sessions\.poll_seconds: .*greater than 0"),
        ("logikal: {sessions: {limit: 4}}", r"logikal\.sessions\.limit: Extra inputs are not permitted"),
        (
            "square: {inventory: {rows_per_transaction: 0}}",
            r"square\.inventory\.rows_per_transaction: .*greater than or equal to 1",
        ),
        (
            "square: {catalog: {rows_per_transaction: 1000000}}",
            r"square\.catalog\.rows_per_transaction: .*less than or equal to 100000",
        ),
        (
            "square: {catalog: {seconds_per_transaction: 0}}",
            r"square\.catalog\.seconds_per_transaction: .*greater than 0",
        ),
        (
            "square: {orders: {rows_per_transaction: 0}}",
            r"square\.orders\.rows_per_transaction: .*greater than or equal to 1",
        ),
    ],
)
def test_a_bad_override_fails_naming_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    override = _write(tmp_path, text)
    with pytest.raises(PolicyFileError, match=message) as raised:
        load_policies(POLICIES_FILE, override)
    assert str(raised.value).startswith(f"{override}: invalid sync policy: ")
    assert str(POLICIES_FILE) not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("square: [1, 2\n", "not valid YAML"), ("- orders\n", "a policy file must be a mapping, not list")],
)
def test_an_unreadable_override_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    override = _write(tmp_path, text)
    with pytest.raises(PolicyFileError, match=re.escape(f"{override}: {message}")):
        load_policies(POLICIES_FILE, override)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PolicyFileError, match=re.escape(f"{missing}: cannot read the policy file")):
        load_policies(POLICIES_FILE, missing)


def test_max_runtime_tags_add_up_the_objects_of_a_run() -> None:
    square = load_policies().square
    total = square.locations.max_runtime_minutes + square.orders.max_runtime_minutes
    assert max_runtime_tags(square.locations, square.orders) == {MAX_RUNTIME_TAG: str(round(total * 60))}


def test_a_run_with_step_retries_gets_room_for_every_retry_delay() -> None:
    policies = load_policies()
    square, retries = policies.square, policies.retries
    total = square.locations.max_runtime_minutes + square.orders.max_runtime_minutes
    # Every sync may wait max_retries delays; the retries themselves share the runtimes.
    room = retries.max_retries * 2 * retries.delay_minutes
    tags = max_runtime_tags(square.locations, square.orders, step_retries=retries)
    assert tags == {MAX_RUNTIME_TAG: str(round((total + room) * 60))}


def test_run_retry_tags_ask_dagster_for_retries_from_failure_of_dead_workers_only(tmp_path: Path) -> None:
    override = _write(tmp_path, "retries:\n  max_retries: 5\n")
    retries = load_policies(POLICIES_FILE, override).retries
    assert run_retry_tags(retries) == {
        MAX_RETRIES_TAG: "5",
        RETRY_STRATEGY_TAG: "FROM_FAILURE",
        RETRY_ON_STEP_FAILURE_TAG: "false",
    }
    assert retries.delay_minutes == load_policies().retries.delay_minutes  # not overridden


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retries: {max_retries: -1}", r"retries\.max_retries: Input should be greater than or equal to 0"),
        ("retries: {max_retries: 11}", r"retries\.max_retries: Input should be less than or equal to 10"),
        ("retries: {delay_minutes: soon}", r"retries\.delay_minutes: Input should be a valid number"),
        (
            "retries: {delay_minutes: 2000}",
            r"retries\.delay_minutes: Input should be less than or equal to 1440",
        ),
        ("retries: {backoff: 2}", r"retries\.backoff: Extra inputs are not permitted"),
    ],
)
def test_a_bad_retry_policy_names_its_key(tmp_path: Path, text: str, message: str) -> None:
    override = _write(tmp_path, text)
    with pytest.raises(PolicyFileError, match=re.escape(f"{override}: invalid sync policy: ") + message):
        load_policies(POLICIES_FILE, override)


def test_the_retry_policy_has_no_defaults_in_code(tmp_path: Path) -> None:
    """Its values live in policies.yaml only: a file without them is refused, naming the keys."""
    packaged = _write(tmp_path, POLICIES_FILE.read_text().replace("retries:\n  max_retries:", "other:\n  x:"))
    with pytest.raises(PolicyFileError) as refused:
        load_policies(packaged)
    assert "retries: Field required" in str(refused.value)


_PROBE = """
import json, dagster as dg
from logikal_square_sync.definitions import build_defs
defs = build_defs()
graph = defs.resolve_asset_graph()
orders = graph.get(dg.AssetKey(["square", "orders"]))
print(json.dumps({
    "schedules": {s.name: [s.cron_schedule, dict(s.tags)] for s in defs.schedules},
    "job_tags": dict(defs.resolve_job_def("logikal_project_sync").tags),
    "policy": orders.metadata["sync_policy"].data,
    "source": orders.metadata["sync_policy_source"].text,
    "sensor_intervals": {s.name: s.minimum_interval_seconds for s in defs.sensors},
}))
"""


def _probe(env: dict[str, str]) -> dict:
    done = run_python("-c", _PROBE, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_code_location_runs_on_the_values_in_force_and_shows_them(tmp_path: Path) -> None:
    """Schedules, run tags and the asset metadata the UI shows all follow LSS_POLICIES_FILE."""
    override = _write(
        tmp_path,
        "square:\n  orders:\n    cron: '30 3 * * *'\n    max_runtime_minutes: 45\n"
        "logikal:\n  parts_lists:\n    max_runtime_minutes: 90\n"
        "alerts:\n  run_failure_tick_seconds: 5\n",
    )
    seen = _probe({"LSS_POLICIES_FILE": str(override)})
    assert seen["policy"]["cron"] == "30 3 * * *" and seen["policy"]["max_runtime_minutes"] == 45
    assert seen["source"] == f"policies.yaml + {override}"
    # The orders now have a schedule of their own; the other Square objects keep 02:00.
    by_cron = {cron: tags for cron, tags in seen["schedules"].values()}
    retries = load_policies().retries
    room = retries.max_retries * retries.delay_minutes
    assert by_cron["30 3 * * *"] == {MAX_RUNTIME_TAG: str(round((45 + room) * 60)), **run_retry_tags(retries)}
    assert "0 2 * * *" in by_cron
    assert seen["job_tags"][MAX_RUNTIME_TAG] == str(90 * 60)
    assert seen["sensor_intervals"]["alert_on_run_failure"] == 5
    assert seen["sensor_intervals"]["alert_on_stale_assets"] == 60  # not overridden: the default


def test_a_bad_override_stops_the_code_location_from_loading(tmp_path: Path) -> None:
    override = _write(tmp_path, "square:\n  orders:\n    lookback_hours: 1\n")
    done = run_python(
        "-c", "import logikal_square_sync.definitions", cwd=ROOT, env={"LSS_POLICIES_FILE": str(override)}
    )
    assert done.returncode != 0
    assert f"{override}: invalid sync policy: square.orders: " in done.stderr


@pytest.mark.parametrize(
    ("cron", "minutes", "deadline"),
    [
        ("0 2 * * *", 120, "0 4 * * *"),
        ("30 23 * * *", 60, "30 0 * * *"),  # past midnight: the next day's 00:30, every day
        ("0 */6 * * *", 90, "30 1,7,13,19 * * *"),
        ("*/15 * * * *", 5, "5,20,35,50 * * * *"),
        ("* * * * *", 120, "* * * * *"),
    ],
)
def test_a_cron_deadline_follows_each_tick(cron: str, minutes: int, deadline: str) -> None:
    assert shift_cron(cron, minutes) == deadline


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("30 23 * * 1-5", "would fall on another day"),
        ("0 2-4 * * *", "listed hours"),
        ("0 2 * *", "five fields"),
    ],
)
def test_a_cron_without_a_clear_deadline_is_refused(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shift_cron(cron, 60)


def test_a_cron_policy_has_a_deadline_not_windows(tmp_path) -> None:
    override = tmp_path / "override.yaml"
    override.write_text("square: {orders: {warn_after_minutes: 60, fail_after_minutes: 90}}\n")
    with pytest.raises(PolicyFileError, match=r"square\.orders.*set deadline_after_minutes, not warn"):
        load_policies(override=override)
    override.write_text("logikal: {projects: {interval_minutes: 30, fail_after_minutes: null}}\n")
    with pytest.raises(PolicyFileError, match=r"logikal\.projects.*needs warn_after_minutes and fail_after"):
        load_policies(override=override)

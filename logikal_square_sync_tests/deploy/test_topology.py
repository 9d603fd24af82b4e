"""The production topology, for real: the processes compose.yaml runs, on PostgreSQL, end to end.

1. A schedule tick launches a run through the daemon's queue, a force sync by project name
   completes through the webserver's GraphQL, and the warehouse equals the sandboxes' truth.
2. A run worker SIGKILLed mid-run: the run is failed, its pool slot given back, the next run
   of the asset succeeds, and exactly one alert reaches Slack.
3. The running daemon's alert sensor pings LSS_HEARTBEAT_URL once per tick.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from logikal_square_sync.policies import MAX_RUNTIME_TAG, load_policies, max_runtime_tags, run_retry_tags
from logikal_square_sync.warehouse.engine import warehouse_engine
from logikal_square_sync.warehouse.tables import logikal_projects
from logikal_square_sync_tests.deploy.conftest import LOCATION, Topology, wait_for
from logikal_square_sync_tests.logikal.conftest import source_truth, warehouse_state
from logikal_square_sync_tests.square.conftest import (
    assert_warehouse_equals_source,
    source_orders,
    warehouse_orders,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("topology")]

SCHEDULE = "square_daily_sync"
ALERT_SENSOR = "alert_on_run_failure"


def _runs_of_schedule(topology: Topology) -> list[dg.DagsterRun]:
    with topology.instance() as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE})))


def test_a_schedule_tick_and_a_force_sync_go_through_the_queue_and_fill_the_warehouse(
    topology: Topology, tmp_path: Path
) -> None:
    # The override file made every Square cron "* * * * *": the schedule ticks within a minute.
    topology.instigator("schedule", SCHEDULE, start=True)

    # Meanwhile, LogiKal's directories and projects, as the UI's "Materialize" would.
    projects_run = topology.launch_assets(["logikal", "directories"], ["logikal", "projects"])
    assert topology.wait_for_run(projects_run) == "SUCCESS", topology.log_tail()
    engine = warehouse_engine(topology.warehouse_url)
    with engine.connect() as conn:
        project_id, name = conn.execute(
            sa.select(logikal_projects.c.id, logikal_projects.c.name)
            .order_by(logikal_projects.c.name)
            .limit(1)
        ).one()

    # Force sync by name, exactly as documented: through the webserver's GraphQL and the queue.
    command = [sys.executable, "-m", "logikal_square_sync.force_sync", "--project", name, "--wait"]
    done = subprocess.run(
        command, env=topology.env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr + topology.log_tail()
    assert f"Submitted force sync of LogiKal project {name} ({project_id}" in done.stdout
    assert re.search(r"Run \S+: SUCCESS", done.stdout), done.stdout

    first_runs = wait_for("the schedule's first run", lambda: _runs_of_schedule(topology), timeout=150)
    # One tick is enough; switch it off again so no later tick competes with the next test.
    topology.instigator("schedule", SCHEDULE, start=False)
    # On a slow machine a second tick may have come before the switch: every run must succeed.
    for run in _runs_of_schedule(topology):
        assert topology.wait_for_run(run.run_id) == "SUCCESS", topology.log_tail()
    tick_run = first_runs[-1]  # the first tick's run (get_runs lists the newest first)
    with topology.instance() as instance:
        # The daemon's queue launched it (enqueued, then dequeued), bounded by the policies in force.
        assert instance.get_records_for_run(tick_run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED).records
        layered = load_policies(override=Path(topology.env["LSS_POLICIES_FILE"]))
        square = layered.square
        bound = max_runtime_tags(
            square.locations, square.catalog, square.orders, square.inventory, step_retries=layered.retries
        )
        assert tick_run.tags[MAX_RUNTIME_TAG] == bound[MAX_RUNTIME_TAG]
        retry_tags = run_retry_tags(layered.retries)
        assert {key: tick_run.tags[key] for key in retry_tags} == retry_tags
        assert tick_run.tags["dagster/schedule_name"] == SCHEDULE
        force_run = next(
            r
            for r in instance.get_runs(filters=dg.RunsFilter(job_name="logikal_project_sync"))
            if r.tags.get("dagster/partition") == project_id
        )
        assert force_run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_records_for_run(
            force_run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
        ).records
        assert force_run.remote_job_origin.location_name == LOCATION

    # The warehouse equals the sources: every Square table, the LogiKal tree and the synced project.
    assert_warehouse_equals_source(engine, topology.square)
    truth, stored = source_truth(topology.logikal), warehouse_state(engine)
    assert stored["directories"] == truth["directories"]
    assert stored["projects"] == truth["projects"]
    assert stored["phases"] == {k: v for k, v in truth["phases"].items() if k[0] == project_id}
    assert stored["elevations"] == {k: v for k, v in truth["elevations"].items() if v[0] == project_id}
    ours = {k for k, v in truth["elevations"].items() if v[0] == project_id}
    assert ours and stored["parts_lists"] == {k: v for k, v in truth["parts_lists"].items() if k in ours}
    # Nothing failed, so no run alert. (Freshness alerts may come: the override's every-minute crons make
    # every Square asset due each minute.)
    assert [post for post in topology.slack.posts if "Run failed" in post["text"]] == []


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _worker_pid(topology: Topology, run_id: str) -> int | None:
    with topology.instance() as instance:
        for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
            found = re.match(r"Started process for run \(pid: (\d+)\)", record.event_log_entry.message or "")
            if found:
                return int(found.group(1))
    return None


def _slot_holders(topology: Topology, pool: str) -> set[str]:
    with topology.instance() as instance:
        return instance.event_log_storage.get_concurrency_info(pool).active_run_ids


def test_a_killed_run_worker_gives_back_its_pool_slot_and_alerts_once(topology: Topology) -> None:
    alerts_before = len(topology.slack.posts)
    square = topology.square
    # Every SearchOrders call hangs (for longer than any test waits): the run stops mid-sync.
    square.faults.inject("slow", endpoint="orders_search", times=None, delay_seconds=3600)
    try:
        run_id = topology.launch_assets(["square", "locations"], ["square", "orders"])
        wait_for("the orders sync to hang at Square", lambda: square.stats.faults_fired["slow"] >= 1, 150)
        assert _slot_holders(topology, "square_orders") == {run_id}
        pid = wait_for("the run worker's pid", lambda: _worker_pid(topology, run_id), 30)
        # The code server started it (DefaultRunLauncher): a process of the code-server "container".
        assert pid in _process_tree(topology.processes["code-server"].pid)
        # The worker and its step processes die at once, as in an OOM kill or a redeploy.
        for process in _process_tree(pid):
            os.kill(process, signal.SIGKILL)
    finally:
        square.faults.clear()

    assert topology.wait_for_run(run_id, timeout=60) == "FAILURE"
    # run_monitoring.free_slots_after_run_end_seconds (dagster.yaml) gives the slot back.
    wait_for("the pool slot to be free", lambda: not _slot_holders(topology, "square_orders"), timeout=90)

    following = topology.launch_assets(["square", "orders"])
    assert topology.wait_for_run(following, timeout=120) == "SUCCESS", topology.log_tail()
    engine = warehouse_engine(topology.warehouse_url)
    assert warehouse_orders(engine) == source_orders(square)

    def alerts() -> list[str]:
        """The run alerts since the test began (freshness alerts of the every-minute crons aside)."""
        texts = [post["text"] for post in topology.slack.posts[alerts_before:]]
        return [text for text in texts if "Run failed" in text or "Recovered" in text]

    wait_for("the run-failure alert", lambda: any(run_id in text for text in alerts()), timeout=120)
    wait_for("the recovery message", lambda: any("Recovered" in text for text in alerts()), timeout=120)
    # One more completed tick of the sensor after the alert: it had its chance to send it twice.
    seen = {tick["id"] for tick in topology.sensor_ticks(ALERT_SENSOR)}

    def another_tick() -> bool:
        return any(
            t["id"] not in seen and t["status"] != "STARTED" for t in topology.sensor_ticks(ALERT_SENSOR)
        )

    wait_for(f"another tick of {ALERT_SENSOR}", another_tick, timeout=120)
    # One failure episode: one alert for the killed run, one "Recovered" for the run after it.
    (alert, recovery) = alerts()
    assert run_id in alert and "Run failed" in alert and "Runbook: docs/runbook.md#" in alert
    assert "Recovered: square/locations, square/orders" in recovery or "Recovered: square/orders" in recovery
    assert following in recovery
    assert topology.env["SLACK_WEBHOOK_URL"] not in alert


def test_the_daemon_pings_the_heartbeat_once_per_alert_sensor_tick(topology: Topology) -> None:
    """LSS_HEARTBEAT_URL hears from the running daemon: one ping per finished tick of the alert sensor."""
    agent = f"logikal_square_sync {ALERT_SENSOR}"

    def finished_ticks() -> set[str]:
        return {t["id"] for t in topology.sensor_ticks(ALERT_SENSOR) if t["status"] != "STARTED"}

    before_ticks, before_pings = finished_ticks(), topology.heartbeat.pings.count(agent)
    wait_for("three more ticks", lambda: len(finished_ticks() - before_ticks) >= 3, timeout=120)
    ticks = len(finished_ticks() - before_ticks)
    pings = topology.heartbeat.pings.count(agent) - before_pings
    # A ping goes out inside its tick, before Dagster records the tick: one may be on either side.
    assert ticks - 1 <= pings <= ticks + 1, (ticks, pings)

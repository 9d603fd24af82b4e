"""The production topology, for real: the processes compose.yaml runs, on PostgreSQL, end to end.

1. A schedule tick launches a run through the daemon's queue, a force sync by project name
   completes through the webserver's GraphQL, and the warehouse equals the sandboxes' truth.
2. A run worker SIGKILLed mid-run: the run is failed, its pool slot given back, the next run
   of the asset succeeds, and exactly one alert reaches Slack.
3. The whole code server SIGKILLed mid-step and restarted (a container's crash): the run
   worker dies with it, the run launcher's health check fails the run within two minutes,
   its slot comes back, one alert, the next run succeeds and the warehouse is exact.
4. The daemon SIGKILLed and restarted under a running sync: the run finishes, nothing is lost.
5. A reload of the code location under a running sync: the run left in the old process is
   canceled, the next run succeeds.
6. PostgreSQL (a private cluster: Dagster's storage and the warehouse) restarted mid-sync: the
   run fails or finishes cleanly, nothing half-written, the next run succeeds.
7. The running daemon's alert sensor pings LSS_HEARTBEAT_URL once per tick.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient, ReloadRepositoryLocationStatus

from logikal_square_sync.interfaces.force_sync import ForceSyncError
from logikal_square_sync.interfaces.force_sync.graphql import FINISHED
from logikal_square_sync.policies import MAX_RUNTIME_TAG, load_policies, max_runtime_tags, run_retry_tags
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync.warehouse.tables import logikal_projects
from logikal_square_sync_tests.deploy.compose import LOCATION
from logikal_square_sync_tests.deploy.private_postgres import private_postgres
from logikal_square_sync_tests.deploy.processes import process_tree, wait_for
from logikal_square_sync_tests.deploy.topology import Topology, running_topology
from logikal_square_sync_tests.logikal.source_truth import source_truth, warehouse_state
from logikal_square_sync_tests.square.helpers import (
    assert_warehouse_equals_source,
    normalized,
    source_line_items,
    source_orders,
    warehouse_line_items,
    warehouse_orders,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("topology")]

SCHEDULE = "square_daily_sync"
ALERT_SENSOR = "alert_on_run_failure"
SQUARE_ASSETS = [["square", name] for name in ("locations", "catalog", "orders", "inventory")]
LOCATIONS_AND_ORDERS = [["square", "locations"], ["square", "orders"]]


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
    command = [sys.executable, "-m", "logikal_square_sync.interfaces.force_sync", "--project", name, "--wait"]
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
        origin = force_run.remote_job_origin
        assert origin is not None and origin.location_name == LOCATION

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


@contextlib.contextmanager
def _run_waiting_at_square(
    topology: Topology, *assets: list[str], delay_seconds: float, times: int | None = None
) -> Iterator[str]:
    """Launches a run of `assets` with Square's SearchOrders answering `delay_seconds` late (`times`
    times, or every time) and yields its id once its orders sync waits there; the fault is cleared
    when the block ends."""
    fired = topology.square.stats.faults_fired["slow"]
    topology.square.faults.inject("slow", endpoint="orders_search", times=times, delay_seconds=delay_seconds)
    try:
        run_id = topology.launch_assets(*assets)
        wait_for(
            "the orders sync to wait at Square",
            lambda: topology.square.stats.faults_fired["slow"] > fired,
            timeout=150,
        )
        yield run_id
    finally:
        topology.square.faults.clear()


def _worker_pid(topology: Topology, run_id: str) -> int | None:
    with topology.instance() as instance:
        for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
            found = re.match(r"Started process for run \(pid: (\d+)\)", record.event_log_entry.message or "")
            if found:
                return int(found.group(1))
    return None


def _dead(pid: int) -> bool:
    """Gone, or a zombie that nobody has reaped yet (its parent died with it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except OSError:
        return True


def _slot_holders(topology: Topology, pool: str) -> set[str]:
    with topology.instance() as instance:
        return instance.event_log_storage.get_concurrency_info(pool).active_run_ids


def test_a_killed_run_worker_gives_back_its_pool_slot_and_alerts_once(topology: Topology) -> None:
    alerts_before = len(topology.slack.posts)
    square = topology.square
    # Every SearchOrders call hangs (for longer than any test waits): the run stops mid-sync.
    with _run_waiting_at_square(topology, *LOCATIONS_AND_ORDERS, delay_seconds=3600) as run_id:
        assert _slot_holders(topology, "square_orders") == {run_id}
        pid = wait_for("the run worker's pid", lambda: _worker_pid(topology, run_id), 30)
        # The code server started it (DefaultRunLauncher): a process of the code-server "container".
        assert pid in process_tree(topology.processes["code-server"].pid)
        # The worker and its step processes die at once, as in an OOM kill or a redeploy.
        killed_at = time.monotonic()
        for process in process_tree(pid):
            os.kill(process, signal.SIGKILL)

    assert topology.wait_for_run(run_id, timeout=60) == "FAILURE"
    print(f"\nrun {run_id} ended FAILURE {time.monotonic() - killed_at:.0f} s after its worker was killed")
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


def _run_alerts(topology: Topology, since: int) -> list[str]:
    """The run alerts since post number `since` (freshness alerts of the every-minute crons aside)."""
    texts = [post["text"] for post in topology.slack.posts[since:]]
    return [text for text in texts if "Run failed" in text or "Recovered" in text]


def _wait_for_another_alert_tick(topology: Topology) -> None:
    """One more completed tick of the alert sensor: it had its chance to send anything twice."""
    seen = {tick["id"] for tick in topology.sensor_ticks(ALERT_SENSOR)}

    def another_tick() -> bool:
        return any(
            t["id"] not in seen and t["status"] != "STARTED" for t in topology.sensor_ticks(ALERT_SENSOR)
        )

    wait_for(f"another tick of {ALERT_SENSOR}", another_tick, timeout=120)


def _sync_all_square_and_check_the_warehouse(
    topology: Topology, launch: Callable[[], str] | None = None
) -> str:
    """The next run of every Square asset succeeds and leaves the warehouse equal to the source."""
    run_id = launch() if launch else topology.launch_assets(*SQUARE_ASSETS)
    assert topology.wait_for_run(run_id, timeout=180) == "SUCCESS", topology.log_tail()
    assert_warehouse_equals_source(warehouse_engine(topology.warehouse_url), topology.square)
    return run_id


def _failure_message(topology: Topology, run_id: str) -> str:
    with topology.instance() as instance:
        records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return " ".join(record.event_log_entry.message or "" for record in records)


def test_a_killed_code_server_fails_its_run_within_two_minutes_and_frees_its_slot(topology: Topology) -> None:
    alerts_before = len(topology.slack.posts)
    with _run_waiting_at_square(topology, *LOCATIONS_AND_ORDERS, delay_seconds=3600) as run_id:
        assert _slot_holders(topology, "square_orders") == {run_id}
        worker = wait_for("the run worker's pid", lambda: _worker_pid(topology, run_id), 30)
        assert worker in process_tree(topology.processes["code-server"].pid)
        # The code server's container dies (OOM, crash, node gone): it and its run workers at once.
        killed_at = time.monotonic()
        topology.kill("code-server")
        wait_for("the run worker to die with it", lambda: _dead(worker), timeout=30)
    # compose's `restart: unless-stopped` starts the container again, on the same address.
    topology.restart("code-server")

    def failed() -> bool:
        topology.assert_alive()
        return topology.api.status(run_id) == "FAILURE"

    wait_for(f"run {run_id} to fail\n{topology.log_tail()}", failed, timeout=150, poll=1.0)
    seconds = time.monotonic() - killed_at
    print(f"\nrun {run_id} ended FAILURE {seconds:.0f} s after its code server was killed")
    assert seconds < 120, f"the run ended FAILURE only {seconds:.0f} s after the kill\n{topology.log_tail()}"
    # Failed by run monitoring through the launcher's health check, not by the maximum runtime.
    message = _failure_message(topology, run_id)
    assert "Detected run worker status FAILED" in message and "does not run this run" in message, message
    # run_monitoring.free_slots_after_run_end_seconds (dagster.yaml) gives the slot back.
    wait_for("the pool slot to be free", lambda: not _slot_holders(topology, "square_orders"), timeout=90)
    print(f"its square_orders pool slot was free {time.monotonic() - killed_at:.0f} s after the kill")

    topology.wait_healthy("code-server")
    following = _sync_all_square_and_check_the_warehouse(topology)

    wait_for(
        "the run-failure alert",
        lambda: any(run_id in text for text in _run_alerts(topology, alerts_before)),
        timeout=120,
    )
    wait_for(
        "the recovery message",
        lambda: any(following in text for text in _run_alerts(topology, alerts_before)),
        timeout=120,
    )
    _wait_for_another_alert_tick(topology)
    alerts = _run_alerts(topology, alerts_before)
    failures = [text for text in alerts if "Run failed" in text]
    recoveries = [text for text in alerts if "Recovered" in text]
    assert len(failures) == 1 and run_id in failures[0] and "square/orders" in failures[0], alerts
    assert len(recoveries) == 1 and following in recoveries[0], alerts


def test_a_killed_daemon_leaves_the_running_sync_alone(topology: Topology) -> None:
    alerts_before = len(topology.slack.posts)
    # The first SearchOrders call answers after 10 s: the sync is mid-step while the daemon dies.
    with _run_waiting_at_square(topology, *SQUARE_ASSETS, delay_seconds=10, times=1) as run_id:
        killed_at = time.monotonic()
        topology.kill("daemon")
    topology.restart("daemon")
    # The run worker is the code server's child: it goes on without the daemon, and the new
    # daemon's run monitoring finds it alive.
    assert topology.wait_for_run(run_id, timeout=180) == "SUCCESS", topology.log_tail()
    print(f"\nrun {run_id} ended SUCCESS {time.monotonic() - killed_at:.0f} s after the daemon was killed")
    topology.wait_healthy("daemon")
    assert_warehouse_equals_source(warehouse_engine(topology.warehouse_url), topology.square)
    _sync_all_square_and_check_the_warehouse(topology)
    # The restarted daemon's alert sensor resumes from its stored cursor: nothing failed, nothing sent.
    _wait_for_another_alert_tick(topology)
    assert [text for text in _run_alerts(topology, alerts_before) if "Run failed" in text] == []


def test_a_reload_of_the_code_location_cancels_the_run_it_leaves_behind(topology: Topology) -> None:
    """A reload (UI: Deployment -> Reload) replaces the code server's gRPC process; a run it started
    goes on in the old one, which no longer answers for it. The launcher's health check has that
    process cancel it rather than take it for dead: no run goes on unseen, none is failed alive.
    The cancel takes effect once the step's call to Square returns: 45 s here, well after it."""
    with _run_waiting_at_square(topology, *LOCATIONS_AND_ORDERS, delay_seconds=45, times=1) as run_id:
        webserver = DagsterGraphQLClient("127.0.0.1", port_number=int(topology.env["DAGSTER_WEBSERVER_PORT"]))
        reloaded = webserver.reload_repository_location(LOCATION)
        assert reloaded.status == ReloadRepositoryLocationStatus.SUCCESS, reloaded.message
        reloaded_at = time.monotonic()
        status = topology.wait_for_run(run_id, timeout=150)
    print(f"\nrun {run_id} ended {status} {time.monotonic() - reloaded_at:.0f} s after the reload")
    assert status == "CANCELED", topology.log_tail()
    with topology.instance() as instance:
        records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_CANCELING).records
    assert any("was reloaded while this run ran" in (r.event_log_entry.message or "") for r in records)
    wait_for("the pool slot to be free", lambda: not _slot_holders(topology, "square_orders"), timeout=90)
    _sync_all_square_and_check_the_warehouse(topology)


def _status_through_restarts(topology: Topology, run_id: str) -> str | None:
    """The run's status once it has ended; None while it runs or while the webserver's storage is
    still reconnecting after the database restart."""
    topology.assert_alive()
    try:
        status = topology.api.status(run_id)
    except ForceSyncError:
        return None
    return status if status in FINISHED else None


def _assert_nothing_half_written(topology: Topology) -> None:
    """Every order in the warehouse is the source's, with exactly its line items: an order and its
    items commit together, so an interrupted sync leaves whole orders or none."""
    engine = warehouse_engine(topology.warehouse_url)
    stored, truth = warehouse_orders(engine), source_orders(topology.square)
    assert {key: truth.get(key) for key in stored} == stored
    items = {item for item in normalized(source_line_items(topology.square)) if item[0] in stored}
    assert warehouse_line_items(engine) == items


def _launch_past_a_dead_pooled_connection(topology: Topology) -> str:
    """Launches the Square assets once the webserver's storage connections work again.

    The webserver (alone among Dagster's processes) keeps a pooled connection to each storage; after
    PostgreSQL restarted, the first request on it fails ("server closed the connection
    unexpectedly"), SQLAlchemy drops the pool, and the next request connects anew."""
    for attempt in range(3):
        try:
            return topology.launch_assets(*SQUARE_ASSETS)
        except ForceSyncError as error:
            if "server closed the connection unexpectedly" not in str(error) or attempt == 2:
                raise
            print(f"launch attempt {attempt + 1} after the restart met the dead pooled connection")
    raise AssertionError("unreachable")


# A topology of its own: its own xdist group too, so the suite runs it beside the shared one.
@pytest.mark.xdist_group("private_postgres")
def test_postgresql_restarting_under_a_running_sync_ends_it_cleanly(tmp_path: Path) -> None:
    # Its own cluster (Dagster's storage and the warehouse): the machine's is every other test's.
    with private_postgres() as postgres, running_topology(tmp_path, postgres.admin_url) as topology:
        with _run_waiting_at_square(topology, *SQUARE_ASSETS, delay_seconds=10, times=1) as run_id:
            restarted_at = time.monotonic()
            postgres.restart("immediate")  # as in a crash of the database server: no checkpoint
        status = wait_for(
            f"run {run_id} to end after the restart\n{topology.log_tail()}\n{postgres.log_tail()}",
            lambda: _status_through_restarts(topology, run_id),
            timeout=180,
            poll=1.0,
        )
        seconds = time.monotonic() - restarted_at
        print(f"\nrun {run_id} ended {status} {seconds:.0f} s after PostgreSQL restarted")
        assert status in {"SUCCESS", "FAILURE"}, topology.log_tail()
        _assert_nothing_half_written(topology)
        wait_for("the pool slot to be free", lambda: not _slot_holders(topology, "square_orders"), timeout=90)
        _sync_all_square_and_check_the_warehouse(
            topology, lambda: _launch_past_a_dead_pooled_connection(topology)
        )

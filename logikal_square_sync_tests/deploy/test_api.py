"""The ERP's HTTP API over real HTTP: the `api` role of compose.yaml against the production topology.

The API runs as compose.yaml runs it (deploy/commands.sh api), against the topology's webserver,
daemon and code server on PostgreSQL and the in-process LogiKal sandbox, so the tests can add a
project at LogiKal after the last discovery and lock an elevation as a LogiKal user would.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync.warehouse.tables import logikal_projects
from logikal_square_sync_sandbox.server import free_port
from logikal_square_sync_tests.deploy.compose import ROOT
from logikal_square_sync_tests.deploy.processes import stop_processes, wait_for
from logikal_square_sync_tests.deploy.topology import Topology

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("topology")]

JOB = "logikal_project_sync"
# One token per concern: the rate limit (policies.yaml api.requests_per_minute) is per token.
TOKENS = {name: f"{name}-{uuid.uuid4().hex}" for name in ("erp", "clicks", "poll", "misc", "rate", "new")}


def api_command() -> list[str]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return [str(ROOT / "deploy" / "commands.sh"), *services["api"]["command"]]


@dataclass
class Api:
    url: str
    log: Path
    process: subprocess.Popen

    def client(self, token: str | None = "erp") -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[token]}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=400, event_hooks=_CONFORMS)


def _conforms(answer: httpx.Response) -> None:
    """Every answer a test gets is one the served OpenAPI document describes (status and body)."""
    answer.read()
    if answer.request.url.path == "/api/v1/openapi.json":
        return
    base = f"{answer.request.url.scheme}://{answer.request.url.netloc.decode()}"
    request = MockRequest(
        base,
        answer.request.method.lower(),
        answer.request.url.path,
        args=dict(answer.request.url.params),
    )
    response = MockResponse(answer.content, status_code=answer.status_code, content_type="application/json")
    _served_spec(base).validate_response(request, response)


@functools.cache
def _served_spec(base: str) -> OpenAPI:
    return OpenAPI.from_dict(httpx.get(f"{base}/api/v1/openapi.json", timeout=30).json())


_CONFORMS = {"response": [_conforms]}


def _start_api(topology: Topology, tmp: Path, **env: str) -> Api:
    port = free_port()
    log = tmp / f"api-{port}.log"
    process = subprocess.Popen(
        api_command(),
        env={
            **topology.env,
            "LSS_API_TOKENS": ",".join(TOKENS.values()),
            "LSS_API_PORT": str(port),
            "LSS_ROLE_FILE": str(tmp / f"role-{port}"),
            **env,
        },
        cwd=tmp,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = Api(f"http://127.0.0.1:{port}", log, process)

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{api.url}/api/v1/openapi.json", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the API", answers, timeout=60)
    return api


@pytest.fixture(scope="module")
def api(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # The projects the API syncs, discovered as the schedule would (the UI's Materialize).
    run = topology.launch_assets(["logikal", "directories"], ["logikal", "projects"])
    assert topology.wait_for_run(run) == "SUCCESS", topology.log_tail()
    started = _start_api(topology, tmp_path_factory.mktemp("api"))
    try:
        yield started
    finally:
        stop_processes([started.process])


def _project_runs(topology: Topology, project_id: str | None = None) -> list[dg.DagsterRun]:
    with topology.instance() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=JOB))
    return [r for r in runs if project_id is None or r.tags.get("dagster/partition") == project_id]


def _projects(topology: Topology) -> list[dict]:
    """The sandbox's seeded projects (not those a test adds), one per test that syncs one."""
    seeded = [p for p in topology.logikal.projects() if not p["name"].startswith("ERP-NEW-")]
    return sorted(seeded, key=lambda p: p["name"])


def test_health_needs_no_token_and_reveals_no_address_or_secret(api: Api, topology: Topology) -> None:
    with api.client(token=None) as client:
        answer = client.get("/api/v1/health")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ok",
        "checks": {"storage": "ok", "daemon": "ok", "code_location": "ok"},
    }
    assert "127.0.0.1" not in answer.text and "postgres" not in answer.text
    # The image's HEALTHCHECK for the role: the API answers.
    port = api.url.rsplit(":", 1)[1]
    check = [str(ROOT / "deploy" / "commands.sh"), "healthcheck", "api"]
    done = subprocess.run(check, env={**topology.env, "LSS_API_PORT": port}, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = httpx.get(f"{api.url}/api/v1/openapi.json", timeout=30).json()
    assert set(document["paths"]) == {
        "/api/v1/sync/force-sync/{project_id}",
        "/api/v1/sync/force-sync",
        "/api/v1/sync/runs/{run_id}",
        "/api/v1/sync/status",
        "/api/v1/health",
        "/api/v1/openapi.json",
    }


def test_a_missing_or_wrong_token_gets_401_and_launches_nothing(api: Api, topology: Topology) -> None:
    project = _projects(topology)[0]["id"]
    before = len(_project_runs(topology))
    path = f"/api/v1/sync/force-sync/{project}?wait=0"
    with httpx.Client(base_url=api.url, timeout=60, event_hooks=_CONFORMS) as client:
        assert client.post(path).status_code == 401
        for header in (f"Bearer {TOKENS['erp']}x", f"Bearer {TOKENS['erp'][:-1]}", "Bearer", TOKENS["erp"]):
            answer = client.post(path, headers={"Authorization": header})
            assert answer.status_code == 401, header
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/api/v1/sync/status").status_code == 401
    assert len(_project_runs(topology)) == before


def test_a_known_project_syncs_through_the_old_middleware_path(api: Api, topology: Topology) -> None:
    project = _projects(topology)[0]
    with api.client() as client:
        answer = client.post(f"/api/v1/sync/force-sync/{project['id']}", params={"wait": 300})
    assert answer.status_code == 200, answer.text + topology.log_tail()
    body = answer.json()
    assert body["status"] == "SUCCESS", body
    assert body["project"] == {"id": project["id"], "name": project["name"]}
    assert body["new"] is False and body["errors"] == []
    assert body["run_url"] == f"{topology.webserver_url}/runs/{body['run_id']}"
    assert body["duration_s"] > 0
    parts = body["rows"]["logikal/parts_lists"]
    assert parts["parts_lists_fetched"] > 0 and parts["parts_lists_failed"] == 0
    assert body["rows"]["logikal/elevations"]["rows_changed"] > 0
    (run,) = _project_runs(topology, project["id"])
    assert run.run_id == body["run_id"] and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["logikal/sync_reason"] == "force_sync"

    # The same JSON for polling, and the project's freshness now.
    with api.client("poll") as client:
        again = client.get(f"/api/v1/sync/runs/{body['run_id']}")
        assert again.status_code == 200 and again.json()["rows"] == body["rows"]
        fresh = client.get("/api/v1/sync/status", params={"project_id": project["id"]})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["freshness"] == "HEALTHY" and fresh.json()["unfetched_parts_lists"] == []


def test_two_simultaneous_clicks_make_one_run_and_wait_0_answers_202(api: Api, topology: Topology) -> None:
    project = _projects(topology)[1]
    path = f"/api/v1/sync/force-sync/{project['id']}"

    def click() -> httpx.Response:
        with api.client("clicks") as client:
            return client.post(path, params={"wait": 0})

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: click(), range(2)))
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    first, second = (a.json() for a in answers)
    assert first["run_id"] == second["run_id"]
    assert first["status"] in {"QUEUED", "STARTED"}
    assert first["status_url"] == f"/api/v1/sync/runs/{first['run_id']}"
    assert [r.run_id for r in _project_runs(topology, project["id"])] == [first["run_id"]]

    with api.client("poll") as client:

        def ended() -> dict | None:
            answer = client.get(first["status_url"])
            assert answer.status_code in {200, 202}, answer.text
            return answer.json() if answer.status_code == 200 else None

        done = wait_for("the run's end, polled", ended, timeout=300, poll=5)
    assert done["status"] == "SUCCESS" and done["project"]["name"] == project["name"]


def test_a_project_created_at_logikal_a_minute_ago_syncs_at_once(api: Api, topology: Topology) -> None:
    directory = topology.logikal.directories()[-1]["path"]
    new_id = topology.logikal.add_project(directory, name="ERP-NEW-001", phases=1, elevations_per_phase=2)
    engine = warehouse_engine(topology.warehouse_url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(logikal_projects.c.id).where(logikal_projects.c.id == new_id)).first()
            is None
        )
    with api.client("new") as client:
        answer = client.post(f"/api/v1/sync/force-sync/{new_id}", params={"wait": 300})
    assert answer.status_code == 200, answer.text + topology.log_tail()
    body = answer.json()
    assert body["status"] == "SUCCESS" and body["new"] is True, body
    assert body["project"] == {"id": new_id, "name": "ERP-NEW-001"}
    assert body["rows"]["logikal/parts_lists"]["parts_lists_fetched"] == 2
    with engine.connect() as conn:
        row = conn.execute(sa.select(logikal_projects).where(logikal_projects.c.id == new_id)).one()
    assert row.directory_path == directory and row.deleted_at is None

    # By name, a second new one; and a GUID LogiKal does not know is a 404 after the search.
    other = topology.logikal.add_project(directory, name="ERP-NEW-002", phases=1, elevations_per_phase=1)
    with api.client("new") as client:
        by_name = client.post("/api/v1/sync/force-sync", params={"name": "erp-new-002", "wait": 300})
        assert by_name.status_code == 200, by_name.text
        assert by_name.json()["project"]["id"] == other and by_name.json()["new"] is True
        missing = client.post(f"/api/v1/sync/force-sync/{uuid.uuid4()}", params={"wait": 0})
    assert missing.status_code == 404 and "neither in the warehouse nor at LogiKal" in missing.json()["error"]

    # A name two new projects share: 409 naming both, nothing launched.
    directories = [d["path"] for d in topology.logikal.directories()]
    twins = {topology.logikal.add_project(path, name="ERP-NEW-TWIN") for path in directories[:2]}
    with api.client("new") as client:
        ambiguous = client.post("/api/v1/sync/force-sync", params={"name": "ERP-NEW-TWIN", "wait": 0})
    assert ambiguous.status_code == 409, ambiguous.text
    assert (
        all(twin in ambiguous.json()["error"] for twin in twins)
        and "Pass the GUID" in ambiguous.json()["error"]
    )
    assert not any(_project_runs(topology, twin) for twin in twins)
    # The lookups' LogiKal sessions claimed slots of the session budget and gave them back.
    with topology.instance() as instance:
        assert (
            "lss-api"
            not in instance.event_log_storage.get_concurrency_info("logikal_sessions").active_run_ids
        )


def test_a_locked_elevation_answers_failure_with_the_reason(api: Api, topology: Topology) -> None:
    project = _projects(topology)[2]
    phase = topology.logikal.phases(project["id"])[0]["id"]
    elevation = topology.logikal.elevations(project["id"], phase)[0]
    topology.logikal.lock_elevation(elevation["id"])
    try:
        with api.client("misc") as client:
            answer = client.post(f"/api/v1/sync/force-sync/{project['id']}", params={"wait": 300})
            freshness = client.get("/api/v1/sync/status", params={"project_id": project["id"]})
    finally:
        topology.logikal.lock_elevation(elevation["id"], locked=False)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "FAILURE", json.dumps(body)
    assert body["rows"]["logikal/parts_lists"]["parts_lists_failed"] == 1
    assert any("locked or in use" in error for error in body["errors"]), body["errors"]
    assert freshness.status_code == 200, freshness.text
    unfetched = freshness.json()["unfetched_parts_lists"]
    assert [u["elevation_id"] for u in unfetched] == [elevation["id"]]


def test_status_unknowns_and_bad_requests(api: Api, topology: Topology) -> None:
    with api.client("misc") as client:
        status = client.get("/api/v1/sync/status")
        assert status.status_code == 200, status.text
        assets = {a["asset"]: a for a in status.json()["assets"]}
        assert assets["logikal/projects"]["last_successful_sync"] is not None
        assert assets["logikal/projects"]["freshness"] in {"HEALTHY", "WARNING", "DEGRADED", "UNKNOWN"}
        assert "next_scheduled_run" in assets["square/orders"]

        unknown = client.post(f"/api/v1/sync/force-sync/{uuid.uuid4()}", params={"wait": 0, "force": 1})
        assert unknown.status_code == 422 and "unknown query parameter(s): force" in unknown.json()["error"]
        assert client.post("/api/v1/sync/force-sync/x", params={"wait": 301}).status_code == 422
        big = client.post("/api/v1/sync/force-sync/x", content=b"x" * 5000)
        assert big.status_code == 413
        assert client.get(f"/api/v1/sync/runs/{uuid.uuid4()}").status_code == 404
        assert client.get("/api/v1/sync/status", params={"project_id": str(uuid.uuid4())}).status_code == 404
        # A run of another job is not the API's to show.
        with topology.instance() as instance:
            other = next(r for r in instance.get_runs() if r.job_name != JOB)
        assert client.get(f"/api/v1/sync/runs/{other.run_id}").status_code == 404


def test_the_rate_limit_answers_429_per_token(api: Api) -> None:
    with api.client("rate") as client:
        codes = [client.get("/api/v1/sync/status", params={"nope": 1}).status_code for _ in range(31)]
        assert codes == [422] * 30 + [429]
        assert int(client.get("/api/v1/sync/status").headers["Retry-After"]) >= 1
    with api.client("misc") as other:  # another client's token is not limited by this one's calls
        assert other.get("/api/v1/sync/status", params={"nope": 1}).status_code == 422


def test_dagster_unreachable_answers_503(api: Api, topology: Topology, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    down = _start_api(topology, tmp_path, DAGSTER_WEBSERVER_URL=f"http://127.0.0.1:{closed}")
    try:
        project = _projects(topology)[0]["id"]
        with down.client() as client:
            answer = client.post(f"/api/v1/sync/force-sync/{project}", params={"wait": 0})
            assert answer.status_code == 503, answer.text
            assert str(closed) not in answer.text
            assert client.get("/api/v1/sync/status").status_code == 503
        with down.client(token=None) as client:
            health = client.get("/api/v1/health")
        assert health.status_code == 503 and str(closed) not in health.text
        assert health.json()["checks"] == {"dagster": "Dagster cannot be reached"}
    finally:
        stop_processes([down.process])
    assert down.log.read_text().count("Dagster webserver unreachable") >= 1


def test_an_unreachable_warehouse_answers_503_without_its_password(
    topology: Topology, tmp_path: Path
) -> None:
    closed = free_port()
    url = f"postgresql+psycopg2://lss:Warehouse-S3cret@127.0.0.1:{closed}/warehouse"
    down = _start_api(topology, tmp_path, WAREHOUSE_URL=url)
    try:
        with down.client() as client:
            answer = client.post(f"/api/v1/sync/force-sync/{uuid.uuid4()}", params={"wait": 0})
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "the warehouse cannot be reached; try again later"}
    finally:
        stop_processes([down.process])
    assert "warehouse unreachable" in down.log.read_text()
    assert "Warehouse-S3cret" not in down.log.read_text()


def test_the_api_refuses_to_start_without_tokens(topology: Topology, tmp_path: Path) -> None:
    env = {k: v for k, v in topology.env.items() if k != "LSS_API_TOKENS"}
    done = subprocess.run(
        api_command(),
        env={**env, "LSS_ROLE_FILE": str(tmp_path / "role")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "LSS_API_TOKENS is not set" in done.stderr


def test_no_token_reaches_a_log(api: Api, topology: Topology) -> None:
    """Last in the module: every request above has been logged by now."""
    logs = api.log.read_text() + "".join(
        path.read_text() for path in topology.logs.iterdir() if path.is_file()
    )
    assert "force sync of LogiKal project" in logs  # the API's own log lines are there
    for token in TOKENS.values():
        assert token not in logs

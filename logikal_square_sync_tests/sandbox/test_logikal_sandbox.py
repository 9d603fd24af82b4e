"""The LogiKal sandbox over real HTTP: spec conformance, session rules, parts lists, hooks, faults, stats."""

from __future__ import annotations

import base64
import contextlib
import re
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from logikal_square_sync_sandbox.clock import ManualClock, SandboxClock
from logikal_square_sync_sandbox.logikal import (
    BASE_PATH,
    ENDPOINTS,
    PARTS_LIST_TABLES,
    ZERO_GUID,
    LatencyModel,
    LogikalSandbox,
    LogikalSandboxConfig,
    create_app,
)
from logikal_square_sync_sandbox.logikal.app import STATS_PATH
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_tests.clock import ANCHOR

from .logikal_spec import GUID_RE, load_spec
from .vendor_specs import LOGIKAL

SPEC = load_spec()
THUMB = {
    "width": "300",
    "height": "200",
    "format": "PNG",
    "view": "Interior",
    "withdimensions": "false",
    "withdescription": "false",
}
ELEVATION_COLUMNS = {
    "Name",
    "AutoDescription",
    "AutoDescriptionShort",
    "Width_Output",
    "Width_Unit",
    "Height_Output",
    "Height_Unit",
    "Weight_Output",
    "Weight_Unit",
    "Area_Output",
    "Area_Unit",
    "SystemCode",
    "SystemName",
    "SystemLongName",
    "ColorBase_Long",
}
CREDENTIALS = {"username": "sandbox", "password": "sandbox"}
# What each step of a route selects: a directory path, a project, a phase, an elevation.
SELECT_KINDS = ("directories", "projects", "phases", "elevations")
MAPPING_409 = "The requested resource '{}' cannot be set, because it isn't valid in the current mapping."


class Api:
    """A thin MBIOE client that validates every JSON answer against the swagger."""

    def __init__(self, client: httpx.Client, sandbox: LogikalSandbox) -> None:
        self.client = client
        self.sandbox = sandbox

    def call(
        self,
        method: str,
        template: str,
        token: str | None = None,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        path_params: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        path = template.format(**(path_params or {}))
        response = self.client.request(method, path, headers=headers, json=json, params=params)
        if SPEC is not None:
            if json is not None and response.status_code != 400:
                SPEC.validate_request(method, template, json)
            binary = SPEC.is_binary(method, template) and response.status_code == 200
            if not binary:
                SPEC.validate_response(method, template, response.status_code, response.json())
        return response

    def login(self) -> str:
        response = self.call("POST", "/auth", json={**CREDENTIALS, "erp": True})
        assert response.status_code == 200, response.text
        return response.json()["data"]["token"]

    def ok(self, method: str, template: str, token: str | None, **kwargs: Any) -> Any:
        response = self.call(method, template, token, **kwargs)
        assert response.status_code == 200, response.text
        if response.headers["content-type"].startswith("application/json"):
            return response.json().get("data")
        return response.content

    def select(self, kind: str, token: str, identifier: str) -> httpx.Response:
        return self.call("POST", f"/{kind}/select", token, json={"identifier": identifier})

    def navigate(self, token: str, *route: str) -> None:
        """Select a directory path, then as far as `route` goes a project, a phase and an elevation."""
        for kind, identifier in zip(SELECT_KINDS, route, strict=False):
            response = self.select(kind, token, identifier)
            assert response.status_code == 200, response.text

    def expect_error(self, response: httpx.Response, status: int, text: str | None = None) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["code"] == status and body["errors"]
        if text is not None:
            assert text in body["message"], body
        return body


@pytest.fixture
def serve() -> Iterator[Callable[..., Api]]:
    with contextlib.ExitStack() as stack:

        def start(clock: SandboxClock | None = None, **config: Any) -> Api:
            sandbox = LogikalSandbox(LogikalSandboxConfig(**config), clock=clock)
            served = stack.enter_context(serve_in_thread(create_app(sandbox)))
            client = stack.enter_context(httpx.Client(base_url=served.url + BASE_PATH, timeout=30))
            return Api(client, sandbox)

        yield start


@pytest.fixture
def api(serve: Callable[..., Api]) -> Api:
    return serve(parts_list_target_bytes=120_000)


def first_elevation(api: Api, phase_index: int = 0) -> tuple[str, str, str, list[dict[str, Any]]]:
    """(directory, project id, phase id, elevations) of the first phase holding two or more elevations."""
    sandbox = api.sandbox
    for directory in sandbox.directories():
        for project in sandbox.projects(directory["path"]):
            phase = sandbox.phases(project["id"])[phase_index]
            elevations = sandbox.elevations(project["id"], phase["id"])
            if len(elevations) >= 2:
                return directory["path"], project["id"], phase["id"], elevations
    raise AssertionError("no project with two elevations")


# -- spec conformance and data realism -------------------------------------------------


def test_spec_is_available() -> None:
    LOGIKAL.require()
    assert SPEC is not None


def test_version_needs_no_auth_and_validates(api: Api) -> None:
    data = api.ok("GET", "/version", None)
    assert any(component["version"] == "12.2.6.59" for component in data["componentVersions"])


def test_full_walk_matches_truth_and_validates(api: Api) -> None:
    sandbox = api.sandbox
    token = api.login()
    assert GUID_RE.match(token)
    roots = api.ok("GET", "/directories", token)
    assert roots == [d for d in sandbox.directories() if "/" not in d["path"]]
    walked = 0
    for directory in sandbox.directories():
        api.navigate(token, directory["path"])
        children = api.ok("GET", "/directories", token)
        prefix = directory["path"] + "/"
        expected = [d for d in sandbox.directories() if d["path"].startswith(prefix)]
        assert children == [d for d in expected if "/" not in d["path"][len(prefix) :]]
        assert api.ok("GET", "/projects", token) == sandbox.projects(directory["path"])
    for project in sandbox.projects():
        session = api.login()
        api.navigate(session, sandbox.project_directory(project["id"]), project["id"])
        assert api.ok("GET", "/projects/selected", session) == project
        phases = api.ok("GET", "/phases", session)
        assert phases == sandbox.phases(project["id"]) and phases[0]["id"] == ZERO_GUID
        for phase in phases:
            assert api.select("phases", session, phase["id"]).status_code == 200
            elevations = api.ok("GET", "/elevations", session)
            assert elevations == sandbox.elevations(project["id"], phase["id"])
            walked += len(elevations)
        api.ok("DELETE", "/auth", session)
    assert walked == len(sandbox.all_elevation_ids()) == 72


def test_the_stats_endpoint_reports_the_peak_of_concurrent_sessions(api: Api) -> None:
    tokens = [api.login() for _ in range(3)]
    api.ok("DELETE", "/auth", tokens[0])
    api.login()
    # Outside the MBIOE base path: the sandbox's own, for clients in another process.
    root = str(api.client.base_url).rstrip("/").removesuffix(BASE_PATH)
    stats = httpx.get(root + STATS_PATH).json()
    assert stats["logins"] == 4 and stats["logouts"] == 1
    assert stats["active_sessions"] == 3 and stats["max_concurrent_sessions"] == 3
    assert stats == {**stats, "max_concurrent_sessions": api.sandbox.stats.max_concurrent_sessions}


def test_tree_is_deterministic_and_realistic() -> None:
    one, two, other = LogikalSandbox(), LogikalSandbox(), LogikalSandbox(LogikalSandboxConfig(seed=12))
    assert one.directories() == two.directories() and one.projects() == two.projects()
    assert {p["id"] for p in one.projects()}.isdisjoint({p["id"] for p in other.projects()})
    paths = [d["path"] for d in one.directories()]
    assert any(" " in path and "/" in path for path in paths)  # e.g. "Demo Odoo/Sub 1"
    for project in one.projects():
        assert GUID_RE.match(project["id"])
        # Unix seconds, not milliseconds.
        assert 1_600_000_000 < project["createdDate"] <= project["changedDate"] < 2_000_000_000
        phases = one.phases(project["id"])
        assert [phase["id"] for phase in phases][0] == ZERO_GUID and len(phases) == 2
        for phase in phases:
            for elevation in one.elevations(project["id"], phase["id"]):
                assert GUID_RE.match(elevation["id"]) and GUID_RE.match(elevation["versionId"])
                assert elevation["width"] > 0 and elevation["height"] > 0 and not elevation["isInRecycleBin"]
                if SPEC is not None:
                    SPEC.validate_definition("ElevationData", elevation)
        if SPEC is not None:
            SPEC.validate_definition("ProjectData", project)


# -- auth -------------------------------------------------------------------------------


def test_login_errors(api: Api) -> None:
    bad = api.call("POST", "/auth", json={"username": "sandbox", "password": "nope"})
    api.expect_error(bad, 401, "Invalid username or password")
    api.expect_error(api.client.post("/auth", content=b"{not json"), 400)
    api.expect_error(api.call("POST", "/auth", json={"username": "sandbox"}), 400)
    api.expect_error(api.call("POST", "/auth", json={**CREDENTIALS, "erp": "y"}), 400)
    assert api.sandbox.stats.failed_logins == 1 and api.sandbox.stats.logins == 0


def test_invalid_tokens_answer_401(api: Api) -> None:
    message = "Invalid session authentication identifier"
    api.expect_error(api.call("GET", "/directories"), 401, message)
    api.expect_error(api.call("GET", "/directories", "5ddb1393-56eb-4280-9f7e-3c3aec51483c"), 401, message)
    token = api.login()
    # The swagger declares a bare apiKey header; both forms work.
    assert api.client.get("/directories", headers={"Authorization": token}).status_code == 200
    api.ok("DELETE", "/auth", token)
    api.expect_error(api.call("GET", "/directories", token), 401, message)
    api.expect_error(api.call("DELETE", "/auth", token), 401, message)
    stats = api.sandbox.stats
    assert (stats.logins, stats.logouts, stats.active_sessions) == (1, 1, 0)


# -- session state rules ----------------------------------------------------------------


def test_directory_rules(api: Api) -> None:
    token = api.login()
    api.expect_error(api.call("GET", "/projects", token), 405, "expects the session to be in a directory")
    api.expect_error(api.select("projects", token, ZERO_GUID), 405, "directory")
    api.expect_error(api.call("GET", "/projects/selected", token), 405, "in a project")
    api.expect_error(api.select("directories", token, "Nope/Nothing"), 404)
    api.expect_error(api.call("POST", "/directories/select", token, json={"id": "Demo Odoo"}), 400)
    # Any directory by full path, deep first, then its parent, then a sibling root.
    api.navigate(token, "Demo Odoo/Sub 1")
    assert api.ok("GET", "/directories", token) == []
    api.navigate(token, "Demo Odoo")
    children = {d["path"] for d in api.ok("GET", "/directories", token)}
    assert children == {"Demo Odoo/Sub 1", "Demo Odoo/Building A"}
    api.navigate(token, "Projects 2024")
    assert api.ok("GET", "/projects", token) == api.sandbox.projects("Projects 2024")


def test_project_state_rules(api: Api) -> None:
    directory, project_id, _, _ = first_elevation(api)
    token = api.login()
    other_dir = next(d["path"] for d in api.sandbox.directories() if d["path"] != directory)
    other_project = api.sandbox.projects(other_dir)[0]["id"]
    api.navigate(token, directory)
    api.expect_error(api.select("projects", token, other_project), 404)
    api.expect_error(api.select("projects", token, "not-a-guid"), 400)
    api.expect_error(api.call("GET", "/phases", token), 405, "in a project")
    api.expect_error(api.select("phases", token, ZERO_GUID), 405, "in a project")
    api.navigate(token, directory, project_id.upper())  # .NET parses GUIDs case-insensitively
    api.expect_error(api.call("GET", "/projects", token), 405, "in a directory")
    api.expect_error(api.call("GET", "/directories", token), 405, "in a directory")
    body = api.expect_error(api.select("directories", token, directory), 409)
    assert body["errors"] == [MAPPING_409.format(directory)]
    api.expect_error(api.select("projects", token, project_id), 409, "isn't valid in the current mapping")
    api.expect_error(api.call("GET", "/elevations", token), 405, "in a phase")
    api.expect_error(api.select("elevations", token, ZERO_GUID), 405, "in a phase")
    api.expect_error(api.call("GET", "/elevations/selected/parts-list", token), 405, "in an elevation")
    thumb = api.call(
        "GET",
        "/elevations/{elevationId}/thumbnail",
        token,
        params=THUMB,
        path_params={"elevationId": ZERO_GUID},
    )
    api.expect_error(thumb, 405, "in a phase")
    assert api.ok("GET", "/projects/selected", token)["id"] == project_id
    api.expect_error(api.select("phases", token, "11111111-2222-4333-8444-555555555555"), 404)


def test_sibling_phases_in_one_session(api: Api) -> None:
    directory, project_id, _, _ = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id)
    phases = api.ok("GET", "/phases", token)
    for phase in phases:
        assert api.select("phases", token, phase["id"]).status_code == 200
        assert api.ok("GET", "/phases", token) == phases  # listing works in phase state too
        assert api.ok("GET", "/elevations", token) == api.sandbox.elevations(project_id, phase["id"])
        assert api.ok("GET", "/projects/selected", token)["id"] == project_id
        api.expect_error(api.call("GET", "/projects", token), 405, "directory")


def test_elevation_state_rules(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    api.expect_error(api.call("GET", "/elevations/selected/parts-list", token), 405, "in an elevation")
    assert api.select("elevations", token, elevations[0]["id"]).status_code == 200
    api.expect_error(api.call("GET", "/elevations", token), 405, "in a phase")
    api.expect_error(api.call("GET", "/phases", token), 405, "in a project")
    api.expect_error(api.select("phases", token, phase_id), 409, "isn't valid in the current mapping")
    api.expect_error(api.select("directories", token, directory), 409)
    api.expect_error(api.select("projects", token, project_id), 409)
    assert api.ok("GET", "/projects/selected", token)["id"] == project_id
    # Thumbnails by id keep working in elevation state, for elevations of the same phase.
    png = api.ok(
        "GET",
        "/elevations/{elevationId}/thumbnail",
        token,
        params=THUMB,
        path_params={"elevationId": elevations[1]["id"]},
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert api.ok("GET", "/elevations/selected/parts-list", token)
    price = api.ok("GET", "/elevations/selected/quotation-price", token)["quotationPrice"]
    assert re.fullmatch(r"€ [\d,]+\.\d\d", price)


@pytest.mark.parametrize("refusal", [None, 409, 405])
def test_sibling_elevation_select(serve: Callable[..., Api], refusal: int | None) -> None:
    api = serve(
        allow_sibling_elevation_select=refusal is None,
        sibling_refusal_status=refusal or 409,
        parts_list_target_bytes=80_000,
    )
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id, phase_id, elevations[0]["id"])
    response = api.select("elevations", token, elevations[1]["id"])
    if refusal is None:
        assert response.status_code == 200
        other_phase = api.sandbox.phases(project_id)[1]["id"]
        foreign = api.sandbox.elevations(project_id, other_phase)[0]["id"]
        api.expect_error(api.select("elevations", token, foreign), 404)
    elif refusal == 409:
        body = api.expect_error(response, 409)
        assert body["errors"] == [MAPPING_409.format(elevations[1]["id"])]
    else:
        api.expect_error(response, 405, "This operation expects the session to be in a phase.")
    if refusal is not None:
        # Refused, not moved: the first elevation is still the selected one, and a new
        # session selects the second from its phase.
        assert api.ok("GET", "/elevations/selected/parts-list", token)
        fresh = api.login()
        api.navigate(fresh, directory, project_id, phase_id, elevations[1]["id"])


def test_sibling_refusal_status_is_405_or_409() -> None:
    with pytest.raises(ValueError, match="sibling_refusal_status must be 405 or 409, got 403"):
        LogikalSandboxConfig(sibling_refusal_status=403)


def test_elevation_select_not_found(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    other_phase = api.sandbox.phases(project_id)[1]["id"]
    foreign = api.sandbox.elevations(project_id, other_phase)[0]["id"]
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    api.expect_error(api.select("elevations", token, foreign), 404)
    api.sandbox.delete_elevation(elevations[0]["id"])
    api.expect_error(api.select("elevations", token, elevations[0]["id"]), 404)


def test_thumbnail_parameters(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    target = {"elevationId": elevations[0]["id"]}
    png = api.ok("GET", "/elevations/{elevationId}/thumbnail", token, params=THUMB, path_params=target)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (300, 200)
    for name in THUMB:
        partial = {key: value for key, value in THUMB.items() if key != name}
        response = api.call(
            "GET", "/elevations/{elevationId}/thumbnail", token, params=partial, path_params=target
        )
        api.expect_error(response, 400)
    for name, bad in (("format", "GIF"), ("view", "Top"), ("withdimensions", "yes"), ("width", "-3")):
        response = api.call(
            "GET",
            "/elevations/{elevationId}/thumbnail",
            token,
            params={**THUMB, name: bad},
            path_params=target,
        )
        api.expect_error(response, 400)
    foreign = {"elevationId": "11111111-2222-4333-8444-555555555555"}
    api.expect_error(
        api.call("GET", "/elevations/{elevationId}/thumbnail", token, params=THUMB, path_params=foreign), 400
    )
    assert api.sandbox.stats.thumbnails_served == 1


# -- parts lists ------------------------------------------------------------------------------


def columns_of(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def open_sqlite(data: bytes) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.deserialize(data)
    return con


def test_parts_list_is_a_real_sqlite_file_of_the_target_size(serve: Callable[..., Api]) -> None:
    api = serve()  # default 900 kB target
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id, phase_id, elevations[0]["id"])
    data = base64.b64decode(api.ok("GET", "/elevations/selected/parts-list", token), validate=True)
    assert data.startswith(b"SQLite format 3\x00")
    assert 0.85 * 900_000 <= len(data) <= 1.15 * 900_000
    assert data == api.sandbox.parts_list_bytes(elevations[0]["id"])
    con = open_sqlite(data)
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(PARTS_LIST_TABLES) <= tables and {"Elevations", "Glass", "Articles", "Profiles"} <= tables
    columns = {row[1] for row in con.execute("PRAGMA table_info(Elevations)")}
    assert columns >= ELEVATION_COLUMNS
    # Coupled elements can carry extra rows, so the elevation is found by Name.
    rows = con.execute("SELECT Name FROM Elevations WHERE Name = ?", (elevations[0]["name"],)).fetchall()
    assert len(rows) == 1
    assert columns_of(con, "Glass") >= {"GlassID", "Name"}
    assert columns_of(con, "Articles") >= {"ArticleCode", "Description", "Amount", "Color"}
    assert con.execute("SELECT count(*) FROM Glass").fetchone()[0] >= 1
    assert con.execute("SELECT count(*) FROM Articles").fetchone()[0] > 1000
    # Same version, same file; sibling elevation, different file.
    assert api.sandbox.parts_list_bytes(elevations[0]["id"]) == data
    assert api.sandbox.parts_list_bytes(elevations[1]["id"]) != data
    assert api.sandbox.stats.parts_lists_served == 1


def test_small_parts_list_target(api: Api) -> None:
    _, _, _, elevations = first_elevation(api)
    data = api.sandbox.parts_list_bytes(elevations[0]["id"])
    assert 100_000 <= len(data) <= 150_000
    assert open_sqlite(data).execute("SELECT count(*) FROM Elevations").fetchone()[0] >= 1


# -- mutation hooks ------------------------------------------------------------------------------


def test_change_recycle_add_delete_elevation(api: Api) -> None:
    sandbox = api.sandbox
    directory, project_id, phase_id, elevations = first_elevation(api)
    target = elevations[0]
    before = sandbox.parts_list_bytes(target["id"])
    sandbox.change_elevation(target["id"])
    sandbox.recycle_elevation(elevations[1]["id"])
    new_id = sandbox.add_elevation(project_id, phase_id, name="P99")
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    listed = {e["id"]: e for e in api.ok("GET", "/elevations", token)}
    changed = listed[target["id"]]
    assert changed["versionId"] != target["versionId"]
    assert changed["changedDate"] > target["changedDate"]
    assert changed["changedDate"] == int(sandbox.clock.time())  # stamped with the sandbox's clock
    assert listed[elevations[1]["id"]]["isInRecycleBin"] is True
    assert listed[new_id]["name"] == "P99" and GUID_RE.match(new_id)
    assert api.select("elevations", token, target["id"]).status_code == 200
    served = base64.b64decode(api.ok("GET", "/elevations/selected/parts-list", token))
    assert served != before and served == sandbox.parts_list_bytes(target["id"])
    sandbox.delete_elevation(new_id)
    session = api.login()
    api.navigate(session, directory, project_id, phase_id)
    assert new_id not in {e["id"] for e in api.ok("GET", "/elevations", session)}
    api.expect_error(api.select("elevations", session, new_id), 404)
    with pytest.raises(KeyError):
        sandbox.parts_list_bytes(new_id)


def test_add_and_delete_projects_and_directories(api: Api) -> None:
    sandbox = api.sandbox
    path = sandbox.add_directory("Demo Odoo", "New Customer")
    assert path == "Demo Odoo/New Customer"
    project_id = sandbox.add_project(path, name="NEW001", phases=2, elevations_per_phase=3)
    token = api.login()
    api.navigate(token, "Demo Odoo")
    assert {"name": "New Customer", "path": path} in api.ok("GET", "/directories", token)
    api.navigate(token, path)
    projects = api.ok("GET", "/projects", token)
    assert [p["name"] for p in projects] == ["NEW001"] and projects[0]["id"] == project_id
    assert api.select("projects", token, project_id).status_code == 200
    phases = api.ok("GET", "/phases", token)
    assert phases[0]["id"] == ZERO_GUID and len(phases) == 2
    # The default phase id repeats across projects; elevations stay per project.
    assert api.select("phases", token, ZERO_GUID).status_code == 200
    assert len(api.ok("GET", "/elevations", token)) == 3
    doomed = sandbox.projects("Demo Odoo")[0]["id"]
    sandbox.delete_project(doomed)
    session = api.login()
    api.navigate(session, "Demo Odoo")
    assert doomed not in {p["id"] for p in api.ok("GET", "/projects", session)}
    api.expect_error(api.select("projects", session, doomed), 404)
    with pytest.raises(ValueError):
        sandbox.add_directory("Demo Odoo", "New Customer")
    removed_projects = {p["id"] for p in sandbox.projects("Demo Odoo/Sub 1")}
    assert sandbox.delete_directory("Demo Odoo/Sub 1") == ["Demo Odoo/Sub 1"]
    api.expect_error(api.select("directories", api.login(), "Demo Odoo/Sub 1"), 404)
    assert removed_projects and removed_projects.isdisjoint(p["id"] for p in sandbox.projects())
    removed = sandbox.delete_directory("Demo Odoo")
    assert removed[-1] == "Demo Odoo" and path in removed
    assert all(not d["path"].startswith("Demo Odoo") for d in sandbox.directories())
    session = api.login()
    assert "Demo Odoo" not in {d["path"] for d in api.ok("GET", "/directories", session)}


def test_objects_deleted_under_a_session(api: Api) -> None:
    directory, project_id, phase_id, _ = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    api.sandbox.delete_project(project_id)
    api.expect_error(api.call("GET", "/elevations", token), 409, "no longer exists")


# -- faults ------------------------------------------------------------------------------------------


def test_expire_tokens(serve: Callable[..., Api]) -> None:
    clock = ManualClock(ANCHOR)
    api = serve(clock=clock, token_ttl_seconds=300)
    one, two, three = api.login(), api.login(), api.login()
    api.sandbox.expire_token(one)
    api.expect_error(api.call("GET", "/directories", one), 401)
    assert api.ok("GET", "/directories", two) is not None
    api.sandbox.expire_token()
    api.expect_error(api.call("GET", "/directories", two), 401)
    api.expect_error(api.call("GET", "/directories", three), 401)
    fresh = api.login()
    clock.advance(299)
    assert api.ok("GET", "/directories", fresh) is not None
    clock.advance(1)  # token_ttl_seconds after the login
    api.expect_error(api.call("GET", "/directories", fresh), 401)
    assert api.sandbox.stats.active_sessions == 0


def test_locked_elevation(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    api.sandbox.lock_elevation(elevations[0]["id"])
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    api.expect_error(api.select("elevations", token, elevations[0]["id"]), 409, "in use by another user")
    api.sandbox.lock_elevation(elevations[0]["id"], locked=False)
    assert api.select("elevations", token, elevations[0]["id"]).status_code == 200


def test_corrupt_parts_list(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    api.sandbox.corrupt_parts_list(elevations[0]["id"])
    token = api.login()
    api.navigate(token, directory, project_id, phase_id, elevations[0]["id"])
    data = base64.b64decode(api.ok("GET", "/elevations/selected/parts-list", token), validate=True)
    assert data and not data.startswith(b"SQLite format 3")
    with pytest.raises(sqlite3.DatabaseError):
        open_sqlite(data).execute("SELECT name FROM sqlite_master").fetchall()
    api.sandbox.change_elevation(elevations[0]["id"])  # a new version is generated afresh
    assert api.sandbox.parts_list_bytes(elevations[0]["id"]).startswith(b"SQLite format 3\x00")


def _served_parts_list(api: Api, path: str, project_id: str, phase_id: str, elevation_id: str) -> bytes:
    token = api.login()
    api.navigate(token, path, project_id, phase_id, elevation_id)
    return base64.b64decode(api.ok("GET", "/elevations/selected/parts-list", token), validate=True)


@pytest.mark.parametrize("kind", ["not_sqlite", "truncated", "damaged"])
def test_a_parts_list_broken_at_the_source_is_the_same_bytes_every_time(api: Api, kind: str) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    elevation = elevations[0]["id"]
    good = api.sandbox.parts_list_bytes(elevation)
    api.sandbox.corrupt_parts_list(elevation, kind=kind)
    first, second = (_served_parts_list(api, directory, project_id, phase_id, elevation) for _ in range(2))
    assert first == second == api.sandbox.parts_list_bytes(elevation) != good
    if kind == "truncated":
        assert first == good[: len(good) * 2 // 3]
    if kind == "damaged":  # the announced size and a valid header; only SQLite's own check tells
        assert len(first) == len(good) and first[:100] == good[:100]
        with pytest.raises(sqlite3.DatabaseError):
            open_sqlite(first).execute("PRAGMA quick_check").fetchall()
    with pytest.raises(ValueError, match="unknown broken parts-list kind"):
        api.sandbox.corrupt_parts_list(elevation, kind="garbled")


def test_random_truncation_and_server_errors_follow_their_shares(serve: Callable[..., Api]) -> None:
    api = serve(parts_list_target_bytes=0, truncated_parts_list_share=0.5, server_error_share=0.0)
    directory, project_id, phase_id, elevations = first_elevation(api)
    elevation = elevations[0]["id"]
    good = api.sandbox.parts_list_bytes(elevation)
    served = [_served_parts_list(api, directory, project_id, phase_id, elevation) for _ in range(20)]
    cut = [data for data in served if data != good]
    assert len(cut) == api.sandbox.stats.parts_lists_truncated and 3 <= len(cut) <= 17
    assert all(good.startswith(data) and len(data) < len(good) for data in cut)
    assert len(set(cut)) == len(cut)  # cut at a random byte: two cuts differ
    api.sandbox.config.truncated_parts_list_share = 0.0
    assert _served_parts_list(api, directory, project_id, phase_id, elevation) == good

    api.sandbox.config.server_error_share = 1.0
    response = api.client.get("/version")
    assert response.status_code == 200  # the health probe never fails at random
    token_response = api.client.post("/auth", json=CREDENTIALS)
    assert token_response.status_code == 500 and api.sandbox.stats.random_server_errors == 1
    with pytest.raises(ValueError, match="server_error_share must be between 0 and 1"):
        LogikalSandboxConfig(server_error_share=2.0)


def test_injected_server_errors_and_other_faults(api: Api) -> None:
    token = api.login()
    api.sandbox.inject_server_errors("GET /directories", times=2)
    api.expect_error(api.call("GET", "/directories", token), 500)
    api.expect_error(api.call("GET", "/directories", token), 500)
    assert api.ok("GET", "/directories", token)
    api.sandbox.inject_server_errors("POST /auth", status=503)
    api.expect_error(api.call("POST", "/auth", json=CREDENTIALS), 503)
    with pytest.raises(ValueError):
        api.sandbox.inject_server_errors("GET /directory")
    api.sandbox.inject_fault("GET /directories", "truncate")
    with pytest.raises(httpx.RemoteProtocolError):
        api.client.get("/directories", headers={"Authorization": f"Bearer {token}"})
    api.sandbox.inject_fault("GET /directories", "delay", seconds=0.2)
    started = time.perf_counter()
    assert api.ok("GET", "/directories", token)
    assert time.perf_counter() - started >= 0.2
    assert api.sandbox.stats.responses["GET /directories 500"] == 2


def test_short_listings_once_per_target(api: Api) -> None:
    sandbox = api.sandbox
    directory, project_id, phase_id, elevations = first_elevation(api)
    phases = sandbox.phases(project_id)
    projects = sandbox.projects(directory)
    sandbox.short_listing_once("projects", targets=[(directory,)])
    sandbox.short_listing_once("phases", targets=[(project_id,)], how="shrunken")
    sandbox.short_listing_once("elevations", targets=[(project_id, phase_id)])
    token = api.login()
    api.navigate(token, directory)
    assert api.ok("GET", "/projects", token) == []  # empty, once
    assert api.ok("GET", "/projects", token) == projects
    api.navigate(token, directory, project_id)
    assert api.ok("GET", "/phases", token) == phases[: len(phases) // 2]  # the first half, once
    assert api.ok("GET", "/phases", token) == phases
    other = api.login()  # whichever session asks next gets the short answer
    api.navigate(other, directory, project_id, phase_id)
    assert api.ok("GET", "/elevations", other) == []
    assert api.ok("GET", "/elevations", other) == elevations
    assert sandbox.listing_faults.pending() == []
    chosen = sandbox.short_listing_once("elevations", share=0.3)
    every = sum(len(sandbox.phases(p["id"])) for p in sandbox.projects())
    assert (
        len(chosen) == max(1, round(0.3 * every)) and sandbox.listing_faults.pending("elevations") == chosen
    )
    assert chosen == sandbox.short_listing_once("elevations", share=0.3)  # seeded: the same share again
    with pytest.raises(ValueError, match="either share or targets"):
        sandbox.short_listing_once("phases")
    with pytest.raises(ValueError, match="target is 2 id"):
        sandbox.short_listing_once("elevations", targets=[(project_id,)])
    with pytest.raises(ValueError, match="unknown listing"):
        sandbox.short_listing_once("parts_lists", targets=[(project_id,)])  # type: ignore[arg-type]


def test_delete_phase(api: Api) -> None:
    sandbox = api.sandbox
    directory, project_id, _, _ = first_elevation(api)
    default, doomed = (phase["id"] for phase in sandbox.phases(project_id)[:2])
    with pytest.raises(ValueError, match="default phase"):
        sandbox.delete_phase(project_id, default)
    removed = sandbox.delete_phase(project_id, doomed)
    assert removed and not set(removed) & set(sandbox.all_elevation_ids())
    token = api.login()
    api.navigate(token, directory, project_id)
    assert doomed not in {phase["id"] for phase in api.ok("GET", "/phases", token)}
    api.expect_error(api.select("phases", token, doomed), 404)


def test_a_lost_answer_is_applied_and_the_connection_closed_unanswered(api: Api) -> None:
    directory, project_id, _, _ = first_elevation(api)
    token = api.login()
    api.sandbox.inject_fault("POST /directories/select", "lost_response")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        api.select("directories", token, directory)
    # The select happened: the session is in that directory, and a blind retry of the
    # project select's lost answer would meet project state.
    assert api.ok("GET", "/projects", token) == api.sandbox.projects(directory)
    api.sandbox.inject_fault("POST /projects/select", "lost_response")
    with pytest.raises(httpx.RemoteProtocolError):
        api.select("projects", token, project_id)
    api.expect_error(api.select("projects", token, project_id), 409, "isn't valid in the current mapping")
    assert api.ok("GET", "/projects/selected", token)["id"] == project_id
    # Any endpoint can lose its answer; a lost login leaves a session no client knows of.
    api.sandbox.inject_fault("POST /auth", "lost_response")
    with pytest.raises(httpx.RemoteProtocolError):
        api.call("POST", "/auth", json=CREDENTIALS)
    stats = api.sandbox.stats
    assert stats.responses["POST /directories/select lost"] == 1
    assert stats.responses["POST /projects/select lost"] == 1 and stats.responses["POST /auth lost"] == 1
    assert stats.logins == 2 and stats.active_sessions == 2


def test_a_false_404_on_a_select_applies_nothing(api: Api) -> None:
    directory, project_id, _, _ = first_elevation(api)
    token = api.login()
    api.sandbox.inject_fault("POST /directories/select", "not_found", times=2)
    for _ in range(2):
        body = api.expect_error(api.select("directories", token, directory), 404, "not found")
        assert directory in body["message"]
    api.expect_error(api.call("GET", "/projects", token), 405)  # still at the root
    api.navigate(token, directory, project_id)
    with pytest.raises(ValueError, match="select endpoints"):
        api.sandbox.inject_fault("GET /directories", "not_found")
    assert api.sandbox.stats.responses["POST /directories/select 404"] == 2


def test_first_select_answer_lost_mode(serve: Callable[..., Api]) -> None:
    api = serve(first_select_answer_lost=True, parts_list_target_bytes=80_000)
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    route = (directory, project_id, phase_id, elevations[0]["id"])
    for kind, identifier in zip(SELECT_KINDS, route, strict=True):
        with pytest.raises(httpx.RemoteProtocolError):
            api.select(kind, token, identifier)  # applied, answer lost
    assert api.ok("GET", "/elevations/selected/parts-list", token)  # the lost selects moved the cursor
    fresh = api.login()
    api.navigate(fresh, *route)  # answered the second time
    # Phase ids repeat across projects: the default phase of another project is a target of its own.
    other = next(p["id"] for p in api.sandbox.projects() if p["id"] != project_id)
    session = api.login()
    api.navigate(session, api.sandbox.project_directory(other))
    with pytest.raises(httpx.RemoteProtocolError):
        api.select("projects", session, other)
    with pytest.raises(httpx.RemoteProtocolError):
        api.select("phases", session, ZERO_GUID)
    assert api.sandbox.stats.responses["POST /phases/select lost"] == 2


def test_first_select_not_found_mode(serve: Callable[..., Api]) -> None:
    api = serve(first_select_not_found=True, parts_list_target_bytes=80_000)
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    api.expect_error(api.select("directories", token, "Nope/Nothing"), 404)  # truly missing
    route = (directory, project_id, phase_id, elevations[0]["id"])
    for kind, identifier in zip(SELECT_KINDS, route, strict=True):
        api.expect_error(api.select(kind, token, identifier), 404, "not found")
        assert api.select(kind, token, identifier).status_code == 200
    assert api.ok("GET", "/elevations/selected/parts-list", token)
    assert api.sandbox.stats.responses["POST /elevations/select 404"] == 1


def test_the_cli_starts_the_sandbox_in_each_mode() -> None:
    from logikal_square_sync_sandbox.__main__ import logikal_config, parse_args

    default = logikal_config(parse_args([]))
    assert default.allow_sibling_elevation_select and default.sibling_refusal_status == 409
    assert not default.first_select_answer_lost and not default.first_select_not_found
    for status in (405, 409):
        config = logikal_config(parse_args(["--refuse-sibling-elevation-select", str(status)]))
        assert not config.allow_sibling_elevation_select and config.sibling_refusal_status == status
    config = logikal_config(parse_args(["--first-select-answer-lost", "--first-select-not-found"]))
    assert config.first_select_answer_lost and config.first_select_not_found
    with pytest.raises(SystemExit):
        parse_args(["--refuse-sibling-elevation-select", "403"])


def test_login_delay(api: Api) -> None:
    api.sandbox.set_login_delay(0.25)
    started = time.perf_counter()
    api.login()
    assert time.perf_counter() - started >= 0.25


def test_unknown_routes(api: Api) -> None:
    token = api.login()
    headers = {"Authorization": f"Bearer {token}"}
    # A path the old middleware called though it does not exist (docs/logikal-api.md §6).
    assert api.client.get(f"/projects/{ZERO_GUID}", headers=headers).status_code == 404
    assert api.client.post("/version").status_code == 501  # real path, method not implemented


# -- stats and latency -----------------------------------------------------------------------------------


def test_stats_count_calls_and_sessions(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    tokens = [api.login() for _ in range(3)]
    api.navigate(tokens[0], directory, project_id, phase_id, elevations[0]["id"])
    api.ok("GET", "/elevations/selected/parts-list", tokens[0])
    api.ok("GET", "/elevations/selected/parts-list", tokens[0])
    api.ok("DELETE", "/auth", tokens[1])
    stats = api.sandbox.stats
    assert stats.logins == 3 and stats.logouts == 1
    assert stats.active_sessions == 2 and stats.max_concurrent_sessions == 3
    assert stats.calls["POST /auth"] == 3 and stats.calls["POST /directories/select"] == 1
    assert stats.calls["POST /elevations/select"] == 1 and stats.parts_lists_served == 2
    assert stats.in_flight_requests == 0
    assert set(stats.calls) <= ENDPOINTS
    api.sandbox.reset_stats()
    assert api.sandbox.stats.total_calls() == 0 and api.sandbox.stats.active_sessions == 2


def test_latency_model_data() -> None:
    model = LatencyModel(time_scale=0.5)
    assert model.range("POST /auth").low == 4.5 and model.range("POST /auth").high == 9.0
    assert model.low("POST /auth") == pytest.approx(2.25) and model.mean("POST /auth") == pytest.approx(3.375)
    calls = {"POST /auth": 2, "GET /elevations/selected/parts-list": 1}
    assert model.lower_bound(calls) == pytest.approx(5.0)
    assert model.lower_bound({"POST /auth": 2}, parallelism=2) == pytest.approx(2.25)
    assert LatencyModel(time_scale=0).sample("POST /auth") == 0
    assert 2.25 <= model.sample("POST /auth") <= 4.5


def test_latency_applies_and_sessions_overlap(serve: Callable[..., Api]) -> None:
    scale = 0.02
    api = serve(time_scale=scale, parts_list_target_bytes=80_000)
    url = str(api.client.base_url)

    def login(_: int) -> float:
        with httpx.Client(base_url=url, timeout=30) as client:
            started = time.perf_counter()
            response = client.post("/auth", json=CREDENTIALS)
            assert response.status_code == 200
            return time.perf_counter() - started

    with ThreadPoolExecutor(4) as pool:
        durations = list(pool.map(login, range(4)))
    assert min(durations) >= 4.5 * scale  # every login waits at least its scaled minimum
    stats = api.sandbox.stats
    assert stats.max_in_flight_requests >= 2 and stats.max_concurrent_sessions == 4
    token = api.login()
    started = time.perf_counter()
    api.navigate(token, "Demo Odoo")
    assert time.perf_counter() - started >= 0.06 * scale

"""The LogiKal sandbox's gateway errors after an applied select, and its directory cycles, over real HTTP."""

# The fixtures `api` and `serve` come from test_logikal_sandbox and are requested by name.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from logikal_square_sync_sandbox.logikal import LogikalSandboxConfig

from .test_logikal_sandbox import SELECT_KINDS, Api, api, first_elevation, serve  # noqa: F401  (fixtures)


def _raw_select(api: Api, kind: str, token: str, identifier: str) -> httpx.Response:
    # Not `Api.select`: a gateway's page is HTML, which the swagger validation would refuse.
    return api.client.post(
        f"/{kind}/select", headers={"Authorization": f"Bearer {token}"}, json={"identifier": identifier}
    )


def _gateway_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html") and str(status) in response.text


def test_an_applied_error_fault_moves_the_cursor_and_answers_the_gateway_status(api: Api) -> None:
    directory, project_id, _, _ = first_elevation(api)
    token = api.login()
    api.navigate(token, directory)
    api.sandbox.inject_fault("POST /projects/select", "applied_error", status=502)
    _gateway_page(_raw_select(api, "projects", token, project_id), 502)
    # Applied: the session is in the project, and a blind retry meets project state.
    assert api.ok("GET", "/projects/selected", token)["id"] == project_id
    api.expect_error(api.select("projects", token, project_id), 409, "isn't valid in the current mapping")
    assert api.sandbox.stats.responses["POST /projects/select 502"] == 1


def test_a_named_target_is_applied_then_answered_504_once(api: Api) -> None:
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    api.navigate(token, directory, project_id, phase_id)
    target = elevations[1]["id"]
    api.sandbox.fail_select_after_applying(target, status=504)
    assert api.select("elevations", token, elevations[0]["id"]).status_code == 200  # not named
    _gateway_page(_raw_select(api, "elevations", token, target), 504)
    assert api.ok("GET", "/elevations/selected/parts-list", token)
    assert api.select("elevations", token, target).status_code == 200  # once only


def test_the_mode_answers_the_first_select_of_each_target_after_applying_it(
    serve: Callable[..., Api],
) -> None:
    api = serve(select_applied_error_status=502, parts_list_target_bytes=80_000)
    directory, project_id, phase_id, elevations = first_elevation(api)
    token = api.login()
    route = (directory, project_id, phase_id, elevations[0]["id"])
    for kind, identifier in zip(SELECT_KINDS, route, strict=True):
        _gateway_page(_raw_select(api, kind, token, identifier), 502)
    assert api.ok("GET", "/elevations/selected/parts-list", token)  # every select was applied
    fresh = api.login()
    api.navigate(fresh, *route)  # answered the second time


def test_a_share_picks_the_same_targets_for_the_same_seed(serve: Callable[..., Api]) -> None:
    def failing(api: Api) -> set[str]:
        token = api.login()
        picked = set()
        for directory in api.sandbox.directories():
            if _raw_select(api, "directories", token, directory["path"]).status_code == 502:
                picked.add(directory["path"])
        return picked

    config = {"select_applied_error_status": 502, "select_applied_error_share": 0.5, "root_directories": 4}
    first, second = failing(serve(**config)), failing(serve(**config))
    assert first == second and 0 < len(first) < len(serve(**config).sandbox.directories())


def test_the_applied_error_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="select_applied_error_status must be a 5xx"):
        LogikalSandboxConfig(select_applied_error_status=409)
    with pytest.raises(ValueError, match="select_applied_error_share must be in"):
        LogikalSandboxConfig(select_applied_error_status=502, select_applied_error_share=0)
    with pytest.raises(ValueError, match="directory_cycle must be"):
        LogikalSandboxConfig(directory_cycle="loop")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["self", "ancestor"])
def test_a_directory_cycle_is_in_the_listing_and_not_in_the_truth(
    serve: Callable[..., Api], kind: str
) -> None:
    api = serve(directory_cycle=kind, parts_list_target_bytes=80_000)
    truth = [d["path"] for d in api.sandbox.directories()]
    root, deepest = truth[0], truth[1]
    token = api.login()
    api.navigate(token, deepest)
    listed = [d["path"] for d in api.ok("GET", "/directories", token)]
    children = [p for p in truth if p.startswith(f"{deepest}/")]
    assert listed == [*children, deepest if kind == "self" else root]
    assert len(truth) == len(set(truth))  # the truth is still a tree


def test_list_in_directory_names_any_directory_in_any_listing(api: Api) -> None:
    root, first, second = (d["path"] for d in api.sandbox.directories()[:3])
    api.sandbox.list_in_directory(None, root)
    api.sandbox.list_in_directory(second, first)
    token = api.login()
    roots = [d["path"] for d in api.ok("GET", "/directories", token)]
    assert roots.count(root) == 2
    api.navigate(token, second)
    assert first in [d["path"] for d in api.ok("GET", "/directories", token)]
    with pytest.raises(KeyError):
        api.sandbox.list_in_directory(second, "No/Such")


def test_the_cli_sets_the_new_modes() -> None:
    from logikal_square_sync_sandbox.__main__ import logikal_config, parse_args

    default = logikal_config(parse_args([]))
    assert default.select_applied_error_status is None and default.directory_cycle is None
    config = logikal_config(
        parse_args(
            [
                "--select-applied-error",
                "504",
                "--select-applied-error-share",
                "0.2",
                "--directory-cycle",
                "self",
            ]
        )
    )
    assert config.select_applied_error_status == 504 and config.select_applied_error_share == 0.2
    assert config.directory_cycle == "self"
    with pytest.raises(SystemExit):
        parse_args(["--select-applied-error", "500"])

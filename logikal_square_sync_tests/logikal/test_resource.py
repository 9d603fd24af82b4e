"""An http:// LOGIKAL_BASE_URL is refused at resource setup unless LOGIKAL_ALLOW_HTTP=true."""

import dagster as dg
import pytest

from logikal_square_sync.logikal.engine.client.base_url_check import InsecureBaseUrlError, allow_http_from_env
from logikal_square_sync.logikal.resource import LogikalResource, logikal_resource_from_env


def _resource(url: str, **extra) -> LogikalResource:
    return LogikalResource(base_url=url, username="u", password="p", **extra)


def _setup(resource: LogikalResource) -> None:
    try:
        with dg.build_resources({"logikal": resource}):
            pass
    except dg.DagsterResourceFunctionError as error:
        # Dagster wraps what the setup raised; the run's error shows this cause.
        assert error.__cause__ is not None
        raise error.__cause__ from None


def test_http_is_refused_naming_both_variables() -> None:
    with pytest.raises(InsecureBaseUrlError) as error:
        _setup(_resource("http://user:hunter2@logikal.internal:8080/MbioeService.svc/api/v3"))
    message = str(error.value)
    assert "LOGIKAL_BASE_URL" in message and "LOGIKAL_ALLOW_HTTP=true" in message
    assert "http://logikal.internal:8080" in message and "hunter2" not in message
    with pytest.raises(InsecureBaseUrlError):
        _resource("http://logikal.internal/api/v3").settings()  # callers outside a run, too


def test_http_is_accepted_when_allowed_and_https_always(logikal_url) -> None:
    _setup(_resource(logikal_url, allow_http=True))
    _setup(_resource("https://logikal.internal/MbioeService.svc/api/v3"))
    assert _resource(logikal_url, allow_http=True).settings().base_url == logikal_url


def test_not_a_url_is_refused() -> None:
    with pytest.raises(InsecureBaseUrlError, match="not an http"):
        _setup(_resource("logikal.internal/api/v3", allow_http=True))


def test_the_environment_sets_it(monkeypatch, logikal_url) -> None:
    monkeypatch.delenv("LOGIKAL_ALLOW_HTTP", raising=False)
    assert allow_http_from_env() is False and logikal_resource_from_env().allow_http is False
    monkeypatch.setenv("LOGIKAL_ALLOW_HTTP", "true")
    assert logikal_resource_from_env().allow_http is True
    monkeypatch.setenv("LOGIKAL_BASE_URL", logikal_url)
    monkeypatch.setenv("LOGIKAL_USERNAME", "u")
    monkeypatch.setenv("LOGIKAL_PASSWORD", "p")
    _setup(logikal_resource_from_env())
    monkeypatch.setenv("LOGIKAL_ALLOW_HTTP", "false")
    with pytest.raises(InsecureBaseUrlError, match="LOGIKAL_ALLOW_HTTP"):
        _setup(logikal_resource_from_env())
    monkeypatch.setenv("LOGIKAL_ALLOW_HTTP", "maybe")
    with pytest.raises(InsecureBaseUrlError, match="LOGIKAL_ALLOW_HTTP='maybe'"):
        allow_http_from_env()

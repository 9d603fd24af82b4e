"""The API's configuration errors and its per-token sliding-minute limit (no server needed).

Everything over HTTP, against the topology, is in deploy/test_api.py.
"""

from __future__ import annotations

import pytest

from logikal_square_sync.interfaces.api.auth import RateLimiter
from logikal_square_sync.interfaces.api.settings import ApiConfigError, settings_from_env
from logikal_square_sync.policies import policies

GOOD = "a-token-of-sixteen-or-more"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "LSS_API_TOKENS is not set"),
        ({"LSS_API_TOKENS": " , "}, "LSS_API_TOKENS is not set"),
        ({"LSS_API_TOKENS": f"{GOOD},short"}, "LSS_API_TOKENS: every token must be at least 16"),
        ({"LSS_API_TOKENS": GOOD, "LSS_API_PORT": "http"}, "LSS_API_PORT='http' is not a port number"),
        ({"LSS_API_TOKENS": GOOD, "LSS_API_PORT": "70000"}, "LSS_API_PORT=70000 is not a port number"),
    ],
)
def test_bad_configuration_names_the_variable_never_the_token(environ: dict, message: str) -> None:
    with pytest.raises(ApiConfigError, match=message) as raised:
        settings_from_env(environ)
    assert GOOD not in str(raised.value)


def test_defaults_and_the_policy_values_and_a_repr_without_tokens() -> None:
    settings = settings_from_env(
        {"LSS_API_TOKENS": f" {GOOD} ,{GOOD}-2", "DAGSTER_WEBSERVER_URL": "http://d:3000/"}
    )
    assert settings.tokens == (GOOD, f"{GOOD}-2")
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.dagster_url == settings.ui_url == "http://d:3000"
    assert settings.requests_per_minute == policies().api.requests_per_minute
    assert settings.max_body_bytes == policies().api.max_body_bytes
    assert GOOD not in repr(settings) and "<2 hidden>" in repr(settings)


def test_the_limit_is_per_client_over_any_sliding_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    for at in (0.0, 10.0, 20.0):
        now[0] = at
        assert limiter.retry_after(1) is None
    assert limiter.retry_after(1) == 40.0  # the first leaves the window at 60 s
    assert limiter.retry_after(2) is None  # another token: its own budget
    now[0] = 59.5
    assert limiter.retry_after(1) == pytest.approx(0.5)
    now[0] = 60.0  # the first request left the window: one more fits, then the next waits 10 s
    assert limiter.retry_after(1) is None
    assert limiter.retry_after(1) == 10.0

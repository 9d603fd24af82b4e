"""The API's configuration, from the environment (the variables .env.example lists)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from logikal_square_sync.interfaces.force_sync import DEFAULT_DAGSTER_URL
from logikal_square_sync.policies import policies

TOKENS_ENV = "LSS_API_TOKENS"
HOST_ENV = "LSS_API_HOST"
PORT_ENV = "LSS_API_PORT"
UI_URL_ENV = "LSS_API_UI_URL"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class ApiConfigError(ValueError):
    """A missing or malformed variable; the message names it (never its value)."""


@dataclass(frozen=True)
class ApiSettings:
    tokens: tuple[str, ...]
    # From policies.yaml (`api`): the one copy of those values.
    requests_per_minute: int
    max_body_bytes: int
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    dagster_url: str = DEFAULT_DAGSTER_URL
    # The UI's address for the run links in answers (the GraphQL address may be internal).
    ui_url: str = DEFAULT_DAGSTER_URL

    # A settings object in a traceback or a debug log never shows the tokens.
    def __repr__(self) -> str:
        return (
            f"ApiSettings(tokens=<{len(self.tokens)} hidden>, host={self.host!r}, port={self.port}, "
            f"requests_per_minute={self.requests_per_minute}, max_body_bytes={self.max_body_bytes})"
        )


def settings_from_env(environ: dict[str, str] | None = None) -> ApiSettings:
    """Settings from the environment and policies.yaml; an ApiConfigError naming what is wrong.

    The API is a plain ASGI process, not a Dagster run or resource, so dg.EnvVar (resolved by
    Dagster when it builds a resource) has nothing to resolve it: the tokens are read from
    os.environ once, here, and kept only in memory. Nothing logs them (ApiSettings' repr hides them).
    """
    env = os.environ if environ is None else environ
    raw = env.get(TOKENS_ENV, "")
    tokens = tuple(token.strip() for token in raw.split(",") if token.strip())
    if not tokens:
        raise ApiConfigError(
            f"{TOKENS_ENV} is not set (or empty): the API refuses to start without client tokens. "
            f"Set it to one or more comma-separated secrets, one per client (docs/api.md)."
        )
    if any(len(token) < 16 for token in tokens):
        raise ApiConfigError(f"{TOKENS_ENV}: every token must be at least 16 characters long")
    port_text = env.get(PORT_ENV, "").strip() or str(DEFAULT_PORT)
    try:
        port = int(port_text)
    except ValueError:
        raise ApiConfigError(f"{PORT_ENV}={port_text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ApiConfigError(f"{PORT_ENV}={port} is not a port number (0-65535)")
    api = policies().api
    dagster_url = (env.get("DAGSTER_WEBSERVER_URL", "").strip() or DEFAULT_DAGSTER_URL).rstrip("/")
    return ApiSettings(
        tokens=tokens,
        host=env.get(HOST_ENV, "").strip() or DEFAULT_HOST,
        port=port,
        dagster_url=dagster_url,
        ui_url=(env.get(UI_URL_ENV, "").strip() or dagster_url).rstrip("/"),
        requests_per_minute=api.requests_per_minute,
        max_body_bytes=api.max_body_bytes,
    )

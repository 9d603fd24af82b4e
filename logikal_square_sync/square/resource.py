"""The Dagster resource for Square's API."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from logikal_square_sync.common.http import RetryPolicy
from logikal_square_sync.square.engine.client import DEFAULT_SQUARE_VERSION, SquareClient

DEFAULT_SQUARE_BASE_URL = "https://connect.squareup.com"


class SquareResource(dg.ConfigurableResource):
    """Square Connect v2: base URL, access token (secret) and the pinned API version."""

    base_url: str = Field(default=DEFAULT_SQUARE_BASE_URL, description="SQUARE_BASE_URL")
    access_token: str = Field(description="SQUARE_ACCESS_TOKEN (a secret: set through dg.EnvVar)")
    square_version: str = Field(default=DEFAULT_SQUARE_VERSION, description="SQUARE_VERSION header")
    timeout_seconds: float = 60.0

    def client(self, max_attempts: int = 6) -> SquareClient:
        return SquareClient(
            self.base_url,
            self.access_token,
            square_version=self.square_version,
            retry=RetryPolicy(max_attempts=max_attempts),
            timeout=self.timeout_seconds,
        )


def square_resource_from_env() -> SquareResource:
    def env_or(name: str, default: str) -> str | dg.EnvVar:
        return dg.EnvVar(name) if os.environ.get(name) else default

    return SquareResource(
        base_url=env_or("SQUARE_BASE_URL", DEFAULT_SQUARE_BASE_URL),
        access_token=dg.EnvVar("SQUARE_ACCESS_TOKEN"),
        square_version=env_or("SQUARE_VERSION", DEFAULT_SQUARE_VERSION),
    )

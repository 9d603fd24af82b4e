"""A stand-in for a Slack incoming webhook over real HTTP: it records what it is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from logikal_square_sync_tests.alerts.endpoints import recording_app

# What a real incoming-webhook path looks like; the last part is the secret.
WEBHOOK_PATH = "/services/T0ALERTS/B0ALERTS/webhookSecretToken4711"
BROKEN_WEBHOOK_PATH = "/services/T0ALERTS/B0GONE/revokedSecretToken0815"


@dataclass
class SlackStandIn:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def broken_webhook_url(self) -> str:
        return self.url + BROKEN_WEBHOOK_PATH

    @property
    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]


def slack_app(posts: list[dict[str, Any]]) -> Starlette:
    """The webhook, appending each JSON body to `posts`, and a revoked one beside it."""

    async def record(request: Request) -> None:
        posts.append(await request.json())

    # What Slack answers for a deleted webhook.
    return recording_app("POST", WEBHOOK_PATH, record, "ok", BROKEN_WEBHOOK_PATH, (404, "no_service"))

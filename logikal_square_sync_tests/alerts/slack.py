"""A stand-in for a Slack incoming webhook over real HTTP: it records what it is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

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

    async def webhook(request: Request) -> PlainTextResponse:
        posts.append(await request.json())
        return PlainTextResponse("ok")

    async def revoked(request: Request) -> PlainTextResponse:
        # What Slack answers for a deleted webhook.
        return PlainTextResponse("no_service", status_code=404)

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route(BROKEN_WEBHOOK_PATH, revoked, methods=["POST"]),
        ]
    )

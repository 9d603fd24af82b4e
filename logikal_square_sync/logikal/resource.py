"""The Dagster resource for LogiKal: connection settings and a session pool per step.

In a run, the pool's sessions claim slots of the Dagster pool `logikal_sessions`
(the session budget of policies.yaml, `session_budget.py`), so all runs together stay
within it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from logikal_square_sync.common.http import tls_context
from logikal_square_sync.logikal.engine.client.base_url_check import allow_http_from_env, check_base_url
from logikal_square_sync.logikal.engine.client.session import ConnectionSettings
from logikal_square_sync.logikal.engine.client.session_pool import SessionBudget, SessionPool
from logikal_square_sync.logikal.session_bank import BankedTokens, bank_policy
from logikal_square_sync.logikal.session_budget import DagsterSessionBudget
from logikal_square_sync.policies import policies

CA_BUNDLE_ENV = "LOGIKAL_CA_BUNDLE"


class LogikalResource(dg.ConfigurableResource):
    """Orgadata LogiKal's MBIOE REST API v3.

    Every step opens its own small pool of sessions and logs all of them out
    when it ends, also when it fails. Each session holds a slot of the Dagster
    pool `logikal_sessions` (the session budget, `logikal.sessions.budget` in
    policies.yaml) from before its login until after its logout.
    """

    base_url: str = Field(description="LOGIKAL_BASE_URL, e.g. https://host/MbioeService.svc/api/v3")
    allow_http: bool = Field(
        default=False,
        description="LOGIKAL_ALLOW_HTTP: accept an http:// base_url (the password then travels in clear)",
    )
    username: str = Field(description="LOGIKAL_USERNAME")
    password: str = Field(description="LOGIKAL_PASSWORD (a secret: set through dg.EnvVar)")
    pool_size: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description=(
            "LogiKal sessions one step uses at most; unset: the whole session budget "
            "(logikal.sessions.budget in policies.yaml), which all runs share"
        ),
    )
    ca_bundle: str | None = Field(
        default=None,
        description=(
            "LOGIKAL_CA_BUNDLE: a PEM file of the CA certificates to trust for LogiKal (an on-premises "
            "server with a private CA); unset: the public CAs. SSL_CERT_FILE is not read."
        ),
    )
    timeout_seconds: float = Field(default=60.0, description="read timeout per call (logins take up to 9 s)")
    connect_timeout_seconds: float = 10.0
    retry_base_delay_seconds: float = Field(default=0.5, description="first backoff of a retried call")
    sibling_elevation_select: bool | None = Field(
        default=None,
        description=(
            "Whether the server lets a session select an elevation from a sibling's elevation state; "
            "unset: detect it - a refusal (405 or 409), once confirmed, means one login per parts list "
            "and is kept in the warehouse for a week"
        ),
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # At resource setup: a run refuses an http:// URL before any login sends the password.
        check_base_url(self.base_url, allow_http=self.allow_http)
        # And a CA bundle it cannot read, naming the variable, before any session is opened.
        tls_context(self.ca_bundle, CA_BUNDLE_ENV)

    def settings(self, max_attempts: int = 4) -> ConnectionSettings:
        check_base_url(self.base_url, allow_http=self.allow_http)
        return ConnectionSettings(
            base_url=self.base_url,
            username=self.username,
            password=self.password,
            timeout_seconds=self.timeout_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            max_attempts=max_attempts,
            retry_base_delay_seconds=self.retry_base_delay_seconds,
            ca_bundle=self.ca_bundle,
        )

    @contextlib.contextmanager
    def session_pool(
        self,
        max_attempts: int = 4,
        context: dg.AssetExecutionContext | dg.OpExecutionContext | None = None,
        warehouse: sa.Engine | None = None,
    ) -> Iterator[SessionPool]:
        """A pool for one step; with the step's `context`, its sessions count against the budget,
        and with the `warehouse` too, they start on the session bank's tokens when it has some."""
        sessions = policies().logikal.sessions
        budget: SessionBudget | None = None
        tokens: BankedTokens | None = None
        if context is not None and not context.instance.event_log_storage.supports_global_concurrency_limits:
            # An ephemeral instance (`dg.materialize` without one): no other run can share it.
            context.log.warning("this Dagster instance has no concurrency slots: no LogiKal session budget")
        elif context is not None:
            budget = DagsterSessionBudget(
                context.instance,
                context.run.run_id,
                context.get_step_execution_context().step.key,
                sessions.budget,
                poll_seconds=sessions.poll_seconds,
            )
            if warehouse is not None and not _launched_in_background(context.run.tags):
                tokens = BankedTokens(warehouse, context.instance, bank_policy().renew_after)
        pool = SessionPool(
            self.settings(max_attempts),
            min(self.pool_size or sessions.budget, sessions.budget),
            sibling_elevations=self.sibling_elevation_select,
            budget=budget,
            tokens=tokens,
        )
        try:
            with pool:
                yield pool
        finally:
            if budget is not None:
                # Every session is logged out by now; a slot left claimed would be a leak.
                budget.free_all()


# Runs the background launched: they leave the bank's tokens to force syncs, whose caller waits.
_BACKGROUND_TAGS = ("dagster/sensor_name", "dagster/schedule_name", "dagster/backfill")


def _launched_in_background(tags: Mapping[str, str]) -> bool:
    return any(tag in tags for tag in _BACKGROUND_TAGS)


def logikal_resource_from_env() -> LogikalResource:
    # Through EnvVar: the values are read in the run worker, never shown in run config.
    return LogikalResource(
        base_url=dg.EnvVar("LOGIKAL_BASE_URL"),
        username=dg.EnvVar("LOGIKAL_USERNAME"),
        password=dg.EnvVar("LOGIKAL_PASSWORD"),
        # Not secrets: read when the code location loads (a change needs a reload).
        allow_http=allow_http_from_env(),
        ca_bundle=os.environ.get("LOGIKAL_CA_BUNDLE", "").strip() or None,
    )

"""Dagster's own freshness daemon over a code location: what the UI's freshness badges show."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

# Not exported by `dagster`: the pieces its own tests use to run a daemon over a code location.
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon as _FreshnessDaemon


@dataclass
class FreshnessDaemon:
    instance: dg.DagsterInstance
    workspace: WorkspaceProcessContext

    def evaluate(self) -> None:
        list(_FreshnessDaemon().run_iteration(self.workspace))


@contextlib.contextmanager
def freshness_daemon(instance: dg.DagsterInstance, module: str) -> Iterator[FreshnessDaemon]:
    """Loads `module`'s `defs` in-process, as the daemon would, and evaluates freshness on demand."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=module, attribute="defs"),
        location_name="test_location",
    )
    with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as workspace:
        yield FreshnessDaemon(instance, workspace)

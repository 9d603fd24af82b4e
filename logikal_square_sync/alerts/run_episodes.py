"""Failure episodes: one alert when an asset (or a project partition) starts failing, one when it recovers.

A LogiKal project open in LogiKal desktop fails every run until it is closed;
an alert per run would page a person a dozen times an hour for one problem.
An episode starts with the first failed run of an asset or partition and ends
with its next successful run; runs that fail in between only count.

The state lives in the alert sensor's cursor (JSON), with the position in the
run history it has read up to, the failed runs still waiting for Dagster's
retry decision and the outbox of alerts not yet delivered, so a daemon restart
neither repeats nor loses an alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from logikal_square_sync.alerts.cursor import SensorCursor
from logikal_square_sync.alerts.outbox import Outbox

# Run ids read at the newest update time: the next query starts there again, so they are skipped.
_MAX_REMEMBERED_RUNS = 500


def episode_keys(run: dg.DagsterRun, assets: Sequence[dg.AssetKey]) -> list[str]:
    """What a run's outcome is about: each asset, with the partition; else the job (op jobs)."""
    partition = run.tags.get("dagster/partition")
    suffix = f"[{partition}]" if partition else ""
    if assets:
        return sorted(f"{key.to_user_string()}{suffix}" for key in assets)
    return [f"job {run.job_name}{suffix}"]


@dataclass
class Episode:
    since: float  # timestamp of the first failed run's end
    failures: int
    first_run: str


@dataclass
class RunCursor(SensorCursor):
    """Where the sensor has read to in the run history, and the episodes still open."""

    after: float | None = None  # update timestamp of the newest run handled
    handled: list[str] = field(default_factory=list)  # run ids handled at or near `after`
    failing: dict[str, Episode] = field(default_factory=dict)
    waiting: dict[str, float] = field(default_factory=dict)  # failed run id -> when first seen undecided
    outbox: Outbox = field(default_factory=Outbox)

    @classmethod
    def from_json(cls, data: dict[str, Any], outbox: Outbox) -> RunCursor:
        return cls(
            after=data.get("after"),
            handled=list(data.get("handled", [])),
            failing={key: Episode(**value) for key, value in data.get("failing", {}).items()},
            waiting={str(k): float(v) for k, v in data.get("waiting", {}).items()},
            outbox=outbox,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "handled": self.handled[-_MAX_REMEMBERED_RUNS:],
            "failing": {key: vars(episode) for key, episode in self.failing.items()},
            "waiting": self.waiting,
        }

    def mark_handled(self, run_id: str, updated_at: float) -> None:
        self.after = max(self.after or updated_at, updated_at)
        self.handled.append(run_id)

    def failed(self, keys: Iterable[str], run_id: str, at: float) -> list[str]:
        """Record a failed run; returns the keys it starts an episode for (empty: already alerted)."""
        started = []
        for key in keys:
            episode = self.failing.get(key)
            if episode is None:
                self.failing[key] = Episode(since=at, failures=1, first_run=run_id)
                started.append(key)
            else:
                episode.failures += 1
        return started

    def succeeded(self, keys: Iterable[str]) -> dict[str, Episode]:
        """Record a successful run; returns the episodes it ends."""
        return {key: episode for key in keys if (episode := self.failing.pop(key, None)) is not None}

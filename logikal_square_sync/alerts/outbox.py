"""The alert outbox: alerts a channel has not taken yet, kept in the alert sensor's cursor.

Why the cursor: Dagster saves it in its own storage (PostgreSQL in production)
together with the rest of the tick's result, and only when the tick returns.
So the outbox, the episodes and the position in the run history always move
together: an alert is queued exactly when its run is marked handled, and a
channel is crossed off exactly when the tick that delivered it is saved. A
table in the warehouse would fail with the warehouse, the very failure the
alert may be about; a table in Dagster's storage would be written apart from
the cursor and could disagree with it after a crash.

Each alert remembers the channels that have not taken it, so one delivered to
Slack but not by e-mail is retried by e-mail only. Dagster copies the cursor
into each tick's history, so the outbox is bounded (policies.yaml,
alerts.outbox_max_alerts): beyond it, the oldest alerts are folded into one
notice at the head of the outbox that counts them and names them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from logikal_square_sync.alerts.deadline import Deadline
from logikal_square_sync.alerts.notifiers import Alert, Notifier, NotifierError, Severity, describe_error
from logikal_square_sync.alerts.redaction import redact

# A send is not started with less time left than this: it could only time out.
_MIN_SEND_SECONDS = 0.5
# How long past the deadline to wait for a channel still inside one network operation.
_JOIN_GRACE_SECONDS = 2.0
# The overflow notice names this many of the alerts it replaced (the newest of them).
_TITLES_KEPT = 20


@dataclass
class Pending:
    """One alert and the channels that still have to take it."""

    id: int
    alert: Alert
    channels: list[str]
    queued_at: float  # timestamp; only for the age shown in messages
    errors: dict[str, str] = field(default_factory=dict)  # last failure per channel
    dropped: int = 0  # > 0: this is the notice standing for that many dropped alerts
    dropped_titles: list[str] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.alert.title,
            "body": self.alert.body,
            "severity": self.alert.severity.value,
            "link": self.alert.link,
            "channels": self.channels,
            "queued_at": self.queued_at,
            "errors": self.errors,
            "dropped": self.dropped,
            "dropped_titles": self.dropped_titles,
        }

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Pending:
        alert = Alert(data["title"], data["body"], Severity(data["severity"]), data.get("link"))
        return cls(
            id=int(data["id"]),
            alert=alert,
            channels=[str(c) for c in data["channels"]],
            queued_at=float(data["queued_at"]),
            errors={str(k): str(v) for k, v in data.get("errors", {}).items()},
            dropped=int(data.get("dropped", 0)),
            dropped_titles=[str(t) for t in data.get("dropped_titles", [])],
        )


@dataclass
class Outbox:
    pending: list[Pending] = field(default_factory=list)
    next_id: int = 1

    @classmethod
    def parse(cls, data: Any) -> Outbox:
        """From the cursor's "outbox" value; anything unreadable gives an empty outbox."""
        if not isinstance(data, Mapping):
            return cls()
        try:
            return cls([Pending.parse(item) for item in data.get("pending", [])], int(data.get("next_id", 1)))
        except (KeyError, ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> dict[str, Any]:
        return {"pending": [item.dump() for item in self.pending], "next_id": self.next_id}

    def add(self, alert: Alert, channels: Sequence[str], at: float, limit: int) -> None:
        """Queues `alert` (secrets masked: the cursor shows in the UI) for every channel in `channels`."""
        if not channels:
            return
        self.pending.append(Pending(self._new_id(), alert.redacted(), list(channels), at))
        self._bound(limit)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _bound(self, limit: int) -> None:
        while len(self.pending) > limit:
            notice = next((item for item in self.pending if item.dropped), None)
            oldest = next((item for item in self.pending if not item.dropped), None)
            if oldest is None:
                return
            self.pending.remove(oldest)
            if notice is None:
                notice = Pending(self._new_id(), oldest.alert, [], oldest.queued_at)
                # At the head: that alerts were lost is the first thing to tell once a channel is back.
                self.pending.insert(0, notice)
            notice.dropped += 1 + oldest.dropped
            notice.dropped_titles = (notice.dropped_titles + [oldest.alert.title])[-_TITLES_KEPT:]
            notice.channels += [c for c in oldest.channels if c not in notice.channels]
            notice.alert = _overflow_notice(notice, limit)

    def channels_waiting(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.pending:
            for channel in item.channels:
                counts[channel] = counts.get(channel, 0) + 1
        return counts


def _overflow_notice(notice: Pending, limit: int) -> Alert:
    named = "\n".join(f"- {title}" for title in notice.dropped_titles)
    more = notice.dropped - len(notice.dropped_titles)
    return Alert(
        title=f"{notice.dropped} alert(s) dropped: a channel failed for too long",
        body=(
            f"More than {limit} alerts (policies.yaml, alerts.outbox_max_alerts) waited for a channel "
            "that kept failing, so the oldest were dropped from the outbox. Check the failed runs and "
            f"asset health in the Dagster UI. The dropped alerts:\n{named}"
            + (f"\n… and {more} more" if more > 0 else "")
        ),
        severity=Severity.ERROR,
    )


@dataclass
class DeliveryReport:
    """What one tick delivered, per channel, and why a channel stopped."""

    sent: list[str] = field(default_factory=list)  # "'title' via slack"
    failed: dict[str, str] = field(default_factory=dict)  # channel -> reason
    waiting: dict[str, int] = field(default_factory=dict)  # channel -> alerts still queued for it

    def describe(self) -> str:
        parts = [f"Sent {'; '.join(self.sent)}."] if self.sent else []
        if self.waiting:
            counts = ", ".join(f"{count} for {channel}" for channel, count in sorted(self.waiting.items()))
            parts.append(f"Waiting in the outbox: {counts}.")
        parts += [f"{channel} failed: {reason}." for channel, reason in sorted(self.failed.items())]
        return " ".join(parts)


@dataclass
class _Result:
    id: int
    error: str | None


def deliver(
    outbox: Outbox, notifiers: Sequence[Notifier], deadline: Deadline, log: logging.Logger
) -> DeliveryReport:
    """Sends what waits in `outbox` until `deadline`; crosses off each channel that took an alert.

    The channels work at the same time, each through the outbox oldest first, so
    one that hangs cannot use up the others' time. A channel stops at its first
    failure in a tick (the next alert would most likely fail the same way) and
    tries again on the next tick.
    """
    report = DeliveryReport()
    by_name = {notifier.name: notifier for notifier in notifiers}
    for item in list(outbox.pending):
        gone = [channel for channel in item.channels if channel not in by_name]
        if gone:
            # Its settings were removed: nothing can ever deliver it there.
            log.warning(f"Alert '{item.alert.title}' dropped for {', '.join(gone)}: no longer configured")
            item.channels = [channel for channel in item.channels if channel in by_name]
        if not item.channels:
            outbox.pending.remove(item)

    results: dict[str, list[_Result]] = {}
    threads = []
    for name, notifier in by_name.items():
        queue = [item for item in outbox.pending if name in item.channels]
        if not queue:
            continue
        results[name] = []
        # Daemon threads: one still stuck in a network call past the grace must not keep the process up.
        thread = threading.Thread(
            target=_drain, args=(notifier, queue, deadline, results[name]), name=f"alert-{name}", daemon=True
        )
        thread.start()
        threads.append((name, thread))
    give_up = Deadline(deadline.end + _JOIN_GRACE_SECONDS)
    for name, thread in threads:
        thread.join(give_up.remaining())
        if thread.is_alive():
            # Its send may still succeed after this tick; it stays queued and may arrive twice.
            report.failed[name] = "still sending when the tick's time was up"

    items = {item.id: item for item in outbox.pending}
    for name, outcomes in results.items():
        for outcome in list(outcomes):  # a copy: a late thread may still append
            item = items[outcome.id]
            if outcome.error is None:
                item.channels.remove(name)
                item.errors.pop(name, None)
                report.sent.append(f"'{item.alert.title}' via {name}")
                log.info(f"Alert '{item.alert.title}' sent via {name}")
            else:
                item.errors[name] = outcome.error
                report.failed[name] = outcome.error
                log.warning(
                    f"Alert '{item.alert.title}' not sent via {name}: {outcome.error}; "
                    "it stays in the outbox for the next tick"
                )
    outbox.pending = [item for item in outbox.pending if item.channels]
    report.waiting = outbox.channels_waiting()
    if report.waiting:
        log.error(f"Alerts not delivered yet: {report.describe()}")
    return report


def _drain(notifier: Notifier, queue: list[Pending], deadline: Deadline, results: list[_Result]) -> None:
    for item in queue:
        if deadline.remaining() < _MIN_SEND_SECONDS:
            return
        try:
            notifier.send(item.alert, deadline)
        except Exception as error:  # any failure of one channel must not stop the others
            reason = str(error) if isinstance(error, NotifierError) else describe_error(error)
            results.append(_Result(item.id, redact(reason)))
            return
        results.append(_Result(item.id, None))

"""Loads and validates `policies.yaml`: plain pydantic models, no Dagster (the engines read them).

`freshness_policies.py` turns them into Dagster's terms (FreshnessPolicy objects, the asset
pages' policy metadata).

The packaged `policies.yaml` holds every value: the models here name and bound the fields
and carry no values of their own (a None default marks what a policy leaves out, such as the
cron of an interval policy), so the packaged file sets each field.
`LSS_POLICIES_FILE` may name an operator's YAML file layered over it (deep merge: a file with only
`square: {orders: {cron: "0 3 * * *"}}` changes just that value), validated the
same way; a bad value fails at load naming the file and the field. The code
server reads the files when it loads, so a changed file takes effect with a
reload of the code location (UI: *Deployment → Reload*), not a redeploy.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

POLICIES_FILE = Path(__file__).with_name("policies.yaml")
OVERRIDE_ENV = "LSS_POLICIES_FILE"
MAX_RUNTIME_TAG = "dagster/max_runtime"
# Dagster's run retries (the daemon re-executes a failed run carrying these tags).
MAX_RETRIES_TAG = "dagster/max_retries"
RETRY_STRATEGY_TAG = "dagster/retry_strategy"
RETRY_ON_STEP_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


def _values(field: str, size: int = 60) -> list[int] | None:
    """What a cron minute (size 60) or hour (24) field fires at ('5', '5,35', '*/15', '*'); else None."""
    if field == "*":
        return list(range(size))
    if field.startswith("*/") and field[2:].isdigit() and int(field[2:]) > 0:
        return list(range(0, size, int(field[2:])))
    if all(part.isdigit() for part in field.split(",")):
        return [int(part) for part in field.split(",")]
    return None


def shift_cron(cron: str, minutes: int) -> str:
    """`cron` moved `minutes` later: a deadline that follows each tick of a schedule.

    Handles crons firing at listed minutes of every hour ('*/15 * * * *') and at a
    fixed minute of listed hours ('0 2 * * *', '30 6,18 * * 1-5'), which is what
    schedules use; anything else is refused with the reason.
    """
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r}: expected five fields")
    minute_field, hours_field, *days = fields
    at_minutes = _values(minute_field)
    if at_minutes is None:
        raise ValueError(f"cron {cron!r}: a deadline can only follow listed minutes ('0', '5,35', '*/15')")
    if hours_field == "*":
        # Every hour: only the minutes move (a deadline 2 h after each quarter hour is a quarter hour).
        shifted = sorted({(minute + minutes) % 60 for minute in at_minutes})
        return " ".join([",".join(map(str, shifted)) if len(shifted) < 60 else "*", "*", *days])
    if len(at_minutes) != 1:
        raise ValueError(f"cron {cron!r}: a deadline can only follow one minute of listed hours")
    hour_values = _values(hours_field, 24)
    if hour_values is None or any(hour > 23 for hour in hour_values):
        raise ValueError(f"cron {cron!r}: a deadline can only follow listed hours ('2', '6,18', '*/6')")
    totals = [hour * 60 + at_minutes[0] + minutes for hour in hour_values]
    if any(total >= 1440 for total in totals) and days != ["*", "*", "*"]:
        raise ValueError(f"cron {cron!r}: its deadline would fall on another day; keep it within the day")
    new_minutes = {total % 60 for total in totals}
    new_hours = sorted({total // 60 % 24 for total in totals})
    return " ".join([str(new_minutes.pop()), ",".join(map(str, new_hours)), *days])


class PolicyModel(BaseModel):
    """A part of policies.yaml: an unknown key is an error (a misspelt key in an operator's file
    must not pass unnoticed)."""

    model_config = ConfigDict(extra="forbid")


class SyncPolicy(PolicyModel):
    """How one object type syncs: on an interval with freshness windows, or on a cron with a deadline."""

    enabled: bool
    interval_minutes: int | None = None
    cron: str | None = None
    warn_after_minutes: int | None = None
    fail_after_minutes: int | None = None
    # Cron-scheduled objects: their data must be in this long after each scheduled time.
    deadline_after_minutes: int | None = Field(default=None, gt=0)
    max_attempts: int = Field(ge=1)
    # Run monitoring fails a run that syncs this object for longer (tag dagster/max_runtime).
    max_runtime_minutes: float = Field(gt=0)

    @model_validator(mode="after")
    def _freshness_defined_once(self) -> SyncPolicy:
        if self.interval_minutes is None and self.cron is None:
            raise ValueError("needs interval_minutes or cron")
        if self.cron is not None:
            if self.warn_after_minutes is not None or self.fail_after_minutes is not None:
                raise ValueError(
                    "a cron policy is fresh by its deadline: set deadline_after_minutes, "
                    "not warn_after_minutes / fail_after_minutes"
                )
            if self.deadline_after_minutes is None:
                raise ValueError("a cron policy needs deadline_after_minutes")
            shift_cron(self.cron, self.deadline_after_minutes)
            return self
        if self.warn_after_minutes is None or self.fail_after_minutes is None:
            raise ValueError("an interval policy needs warn_after_minutes and fail_after_minutes")
        if not 0 < self.warn_after_minutes < self.fail_after_minutes:
            raise ValueError("needs 0 < warn_after_minutes < fail_after_minutes")
        return self

    @property
    def warn_after(self) -> timedelta:
        if self.warn_after_minutes is None:
            raise ValueError("a cron policy has no warn window")
        return timedelta(minutes=self.warn_after_minutes)

    @property
    def fail_after(self) -> timedelta:
        if self.fail_after_minutes is None:
            raise ValueError("a cron policy has no fail window")
        return timedelta(minutes=self.fail_after_minutes)


class PagedSyncPolicy(SyncPolicy):
    """A sync that reads its source in pages of `page_size` records (Square caps a page at 1000)."""

    page_size: int = Field(ge=1, le=1000)


class BatchedSyncPolicy(PagedSyncPolicy):
    """A sync whose watermark moves only with its last page, so several pages may share a transaction."""

    # At most this many rows in one transaction; a page is never split, so a batch holds at least one.
    rows_per_transaction: int = Field(ge=1, le=100_000)
    # A batch is written once its first page was read this long ago (checked as pages arrive).
    seconds_per_transaction: float = Field(gt=0, le=300)


class CatalogPolicy(BatchedSyncPolicy):
    # begin_time is the watermark less this overlap (clock skew, writes in the same millisecond).
    overlap_minutes: int = Field(ge=0)
    full_refresh_days: int = Field(ge=1)


class OrdersPolicy(PagedSyncPolicy):
    # A transaction takes the pages decoded by then, up to this many rows (a page is never split).
    rows_per_transaction: int = Field(ge=1, le=100_000)
    lookback_hours: int
    location_group_size: int
    # Where the first sync of a location starts.
    history_start: date
    completeness_window_days: int = Field(ge=1)

    @model_validator(mode="after")
    def _square_limits(self) -> OrdersPolicy:
        if not 1 <= self.location_group_size <= 10:
            raise ValueError("location_group_size must be 1..10 (SearchOrders caps location_ids at 10)")
        if self.lookback_hours < 72:
            raise ValueError("lookback_hours must be >= 72: offline orders arrive up to 72 h late")
        return self


class InventoryPolicy(BatchedSyncPolicy):
    full_refresh_days: int = Field(ge=1)


class SquarePolicies(PolicyModel):
    locations: SyncPolicy
    catalog: CatalogPolicy
    orders: OrdersPolicy
    inventory: InventoryPolicy


class FailureBackoff(PolicyModel):
    """How long the project-sync sensor waits before queueing a project whose last sync failed again.

    After the n-th failure in a row: first_minutes * factor ** (n - 1), at most max_minutes.
    A full sync resets it; a force sync ignores it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_minutes: float = Field(gt=0)
    factor: float = Field(ge=1)
    max_minutes: float = Field(gt=0)

    @model_validator(mode="after")
    def _capped_above_first(self) -> FailureBackoff:
        if self.max_minutes < self.first_minutes:
            raise ValueError("needs first_minutes <= max_minutes")
        return self

    def delay(self, failures: int) -> timedelta:
        """The wait after `failures` failures in a row (none after none)."""
        if failures <= 0:
            return timedelta(0)
        # Capped before the power grows huge: the exponent stops where the cap is reached.
        minutes = self.first_minutes
        for _ in range(failures - 1):
            minutes *= self.factor
            if minutes >= self.max_minutes:
                break
        return timedelta(minutes=min(minutes, self.max_minutes))


class ProjectSyncRules(PolicyModel):
    """Which LogiKal projects the project-sync sensors queue, and when a project counts as stale.

    The fields are `logikal.project_sync` of policies.yaml. A project's phases, elevations and
    parts lists sync together, so the strictest of their three policies sets the interval and
    the freshness windows of the active projects; `logikal.failure_backoff` sets the wait after
    failures. `LogikalPolicies` attaches both when it loads, so one object answers every question
    of the sensors, the staleness check and the API.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # No defaults: policies.yaml holds the values.
    tick_seconds: int = Field(gt=0)
    # The new-project sensor: a discovered project's first sync is queued within this.
    new_project_tick_seconds: int = Field(gt=0)
    max_runs_per_tick: int = Field(gt=0)
    # A project (or one of its elevations) changed this recently is active.
    active_for_days: float = Field(gt=0)
    # Every other project is synced at least this often, held to the dormant windows.
    sweep_every_hours: float = Field(gt=0)
    dormant_warn_after_hours: float = Field(gt=0)
    dormant_fail_after_hours: float = Field(gt=0)

    # What the sibling policies say (`attach`): the contents' policies and the failure backoff.
    _contents: tuple[SyncPolicy, ...] = PrivateAttr()
    _backoff: FailureBackoff = PrivateAttr()

    @model_validator(mode="after")
    def _dormant_windows_in_order(self) -> ProjectSyncRules:
        if self.dormant_warn_after_hours >= self.dormant_fail_after_hours:
            raise ValueError("needs dormant_warn_after_hours < dormant_fail_after_hours")
        return self

    def attach(self, contents: Iterable[SyncPolicy], backoff: FailureBackoff) -> None:
        """Take the policies of the assets a project sync writes, and the backoff after failures."""
        self._contents = tuple(contents)
        self._backoff = backoff

    @property
    def interval(self) -> timedelta:
        """How often an active project is synced: the shortest of its contents' intervals.

        A cron-scheduled policy has no interval: its warn window is the longest a project may wait.
        """
        return min(
            timedelta(minutes=p.interval_minutes) if p.interval_minutes else p.warn_after
            for p in self._contents
        )

    @property
    def warn_after(self) -> timedelta:
        return min(p.warn_after for p in self._contents)

    @property
    def fail_after(self) -> timedelta:
        return min(p.fail_after for p in self._contents)

    @property
    def backoff(self) -> FailureBackoff:
        return self._backoff

    @property
    def active_for(self) -> timedelta:
        return timedelta(days=self.active_for_days)

    @property
    def sweep_every(self) -> timedelta:
        return timedelta(hours=self.sweep_every_hours)

    @property
    def dormant_warn_after(self) -> timedelta:
        return timedelta(hours=self.dormant_warn_after_hours)

    @property
    def dormant_fail_after(self) -> timedelta:
        return timedelta(hours=self.dormant_fail_after_hours)


class DeletionLimit(PolicyModel):
    """How much of the LogiKal tree one run may mark deleted: of the live directories or projects, or of
    one project's live phases or elevations."""

    # A share of the live directories (or projects) before the run, 0 < share <= 1.
    max_share: float = Field(gt=0, le=1)
    # This many may go whatever the share (a few projects deleted of a few is no mass deletion).
    always_allowed: int = Field(ge=0)


class SessionBankSettings(PolicyModel):
    """Logged-in LogiKal sessions kept warm by the `api` role, so a force sync skips its logins."""

    # Tokens kept logged in at most; each holds a slot of the budget (and a LogiKal licence).
    size: int = Field(ge=0, le=64)
    # A token is logged out and replaced this long after its login; runs never take an older one.
    renew_after_minutes: float = Field(gt=0, le=24 * 60)
    # Budget slots the bank leaves free for runs: it logs tokens out when runs claim these.
    keep_free: int = Field(ge=0, le=64)
    # How often the bank renews, refills and gives back.
    tick_seconds: float = Field(gt=0, le=300)


class SessionSettings(PolicyModel):
    """The LogiKal session budget: logins open at once across all runs (Dagster pool logikal_sessions)."""

    # LogiKal's session and licence limits are unknown: stay well below what a fleet of runs
    # with a pool each would open (max_concurrent_runs of dagster.yaml, each with sessions of its
    # own). Each session claims a slot.
    budget: int = Field(ge=1, le=64)
    # How often a run that wants one more session asks the pool again while it is full.
    poll_seconds: float = Field(gt=0, le=30)
    bank: SessionBankSettings


class LogikalPolicies(PolicyModel):
    directories: SyncPolicy
    projects: SyncPolicy
    phases: SyncPolicy
    elevations: SyncPolicy
    parts_lists: SyncPolicy
    project_sync: ProjectSyncRules
    failure_backoff: FailureBackoff
    deletion_limit: DeletionLimit
    sessions: SessionSettings

    @model_validator(mode="after")
    def _project_sync_follows_its_assets(self) -> LogikalPolicies:
        self.project_sync.attach([self.phases, self.elevations, self.parts_lists], self.failure_backoff)
        return self


# Dagster cuts a sensor evaluation off after this long and then saves nothing of it (its cursor, and
# with it the alert outbox, stays as before the tick). Delivery and the heartbeat stay well inside it,
# leaving the rest for the tick's own queries.
SENSOR_TIMEOUT_SECONDS = 60
_SENSOR_TIME_FOR_SENDING = 45


class AlertPolicies(PolicyModel):
    """How often the alert sensors look, and how long a tick may spend sending (policies.yaml, alerts)."""

    run_failure_tick_seconds: int = Field(ge=5)
    stale_assets_tick_seconds: int = Field(ge=5)
    # At least a second: a send is not started with less than half a second left (alerts/outbox.py).
    delivery_deadline_seconds: float = Field(ge=1)
    heartbeat_timeout_seconds: float = Field(gt=0)
    outbox_max_alerts: int = Field(ge=1, le=200)
    retry_decision_wait_seconds: float = Field(ge=0)

    @model_validator(mode="after")
    def _inside_the_sensor_timeout(self) -> AlertPolicies:
        if self.delivery_deadline_seconds + self.heartbeat_timeout_seconds > _SENSOR_TIME_FOR_SENDING:
            raise ValueError(
                "delivery_deadline_seconds + heartbeat_timeout_seconds must be at most "
                f"{_SENSOR_TIME_FOR_SENDING} s: Dagster ends a sensor tick after {SENSOR_TIMEOUT_SECONDS} s "
                "and then keeps nothing of it"
            )
        return self


class LockTimeouts(PolicyModel):
    """How long a wait for a lock may last before it fails with an error naming the lock."""

    warehouse_seconds: float = Field(gt=0, le=3600)
    session_claim_seconds: float = Field(gt=0, le=3600)


class RetentionPolicy(PolicyModel):
    """How long Dagster's run history is kept, and how much of it one purge deletes."""

    # false: no purge schedule; the job dagster_history_purge still runs when launched by hand.
    enabled: bool
    # Finished runs started longer ago than this are purged (unless they hold a latest event).
    runs_days: int = Field(ge=1)
    # When the purge schedule runs (in SYNC_TIMEZONE).
    cron: str
    # At most this many runs deleted per run of the purge; the rest wait for the next one.
    max_runs_per_tick: int = Field(gt=0, le=100_000)
    max_runtime_minutes: float = Field(gt=0)

    @model_validator(mode="after")
    def _cron_has_five_fields(self) -> RetentionPolicy:
        # Dagster checks the fields themselves when it builds the schedule.
        if len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r}: expected five fields")
        return self


class Retries(PolicyModel):
    """How often, and after how long, a failed sync is tried again (docs/operations.md, "Retries")."""

    model_config = ConfigDict(frozen=True)

    # A Square step failed by an outage runs again up to this often in its run (square/retries.py);
    # a run of our schedules, sensors and jobs whose worker died is re-executed up to this often.
    max_retries: int = Field(ge=0, le=10)
    # Before each retry of a failed Square step; its pool slot is free meanwhile. At most a day:
    # the nightly run's next tick is its retry after that.
    delay_minutes: float = Field(ge=0, le=24 * 60)


class ApiPolicy(PolicyModel):
    """The ERP's HTTP API (logikal_square_sync.interfaces.api, docs/api.md): what one client may send."""

    # Requests one token may make in any sliding minute; more get 429 with Retry-After.
    requests_per_minute: int = Field(ge=1, le=10_000)
    # The largest request body accepted (no endpoint needs one: a click carries its query only).
    max_body_bytes: int = Field(ge=0, le=1_048_576)


class ProgressPolicy(PolicyModel):
    """How often a long sync logs how far it is (`common/progress.py`): whichever comes first."""

    # Pages read (Square), listings (LogiKal directories, projects) or elevations done (a project).
    every_pages: int = Field(ge=1, le=100_000)
    # Since the last line, checked as each of them completes.
    every_seconds: float = Field(gt=0, le=3600)


class Policies(PolicyModel):
    square: SquarePolicies
    logikal: LogikalPolicies
    progress: ProgressPolicy
    retries: Retries
    alerts: AlertPolicies
    lock_timeouts: LockTimeouts
    retention: RetentionPolicy
    api: ApiPolicy


class PolicyFileError(ValueError):
    pass


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        # libyaml's loader where PyYAML was built with it: the pure-Python one takes tens of ms
        # for policies.yaml, in every process that loads the code location.
        raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as error:
        raise PolicyFileError(f"{path}: cannot read the policy file: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise PolicyFileError(f"{path}: not valid YAML: {error}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyFileError(f"{path}: a policy file must be a mapping, not {type(raw).__name__}")
    return raw


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _sets(data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether the raw mapping `data` has a value at the start of the error location `loc`."""
    for part in loc:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def load_policies(path: Path = POLICIES_FILE, override: Path | None = None) -> Policies:
    """The policies of `path`, with the file `override` (if any) deep-merged over them, validated.

    An error names the file that set the bad value (the override when it set any part of the
    failing field's path, else `path`) and the field.
    """
    base = _read_yaml(path)
    layer = _read_yaml(override) if override is not None else {}
    try:
        return Policies.model_validate(deep_merge(base, layer))
    except ValidationError as error:
        by_file: dict[Path, list[str]] = {}
        for issue in error.errors():
            source = override if override is not None and _sets(layer, issue["loc"]) else path
            field = ".".join(str(part) for part in issue["loc"])
            by_file.setdefault(source, []).append(f"{field}: {issue['msg']}")
        raise PolicyFileError(
            " | ".join(
                f"{source}: invalid sync policy: {'; '.join(found)}" for source, found in by_file.items()
            )
        ) from None


def override_file() -> Path | None:
    """The operator's policy file named by LSS_POLICIES_FILE, if set."""
    value = os.environ.get(OVERRIDE_ENV, "").strip()
    return Path(value) if value else None


@functools.cache
def policies() -> Policies:
    return load_policies(POLICIES_FILE, override_file())


def max_runtime_tags(
    *policies_in_sequence: SyncPolicy, step_retries: Retries | None = None
) -> dict[str, str]:
    """The `dagster/max_runtime` run tag for a run syncing these objects one after another.

    The sum of their `max_runtime_minutes`, in seconds: a bound for the run, never tighter
    than any one sync's own. Run monitoring fails a run still going after that long.
    With `step_retries` (a failed step runs again in the run, after a delay) the bound grows by
    every retry's delay, not by a whole runtime per retry: retries are for outages that fail
    fast, and a hung run must still give back its pools within hours, not half a day.
    """
    minutes = sum(p.max_runtime_minutes for p in policies_in_sequence)
    if step_retries is not None:
        minutes += step_retries.max_retries * len(policies_in_sequence) * step_retries.delay_minutes
    return {MAX_RUNTIME_TAG: str(round(minutes * 60))}


def run_retry_tags(retries: Retries) -> dict[str, str]:
    """Dagster's run retries for a run our schedules, sensors and jobs launch.

    Re-executed from failure (only the steps that failed or never ran), up to `max_retries`
    times, and only when the run failed for another reason than a failed step (its worker
    died, run monitoring ended it). A failed step was already retried in its run after the
    delay if a retry could help (Square, `square/retries.py`), or runs again at the next tick
    of its schedule (LogiKal directories, projects) or after its sensor's failure backoff
    (LogiKal project syncs).
    The instance turns the daemon on (`run_retries` in dagster.yaml); its default of 0
    retries leaves runs without these tags, such as a click in the UI, alone.
    """
    return {
        MAX_RETRIES_TAG: str(retries.max_retries),
        RETRY_STRATEGY_TAG: "FROM_FAILURE",
        RETRY_ON_STEP_FAILURE_TAG: "false",
    }


def longest(policies_: Iterable[SyncPolicy]) -> SyncPolicy:
    """The policy with the largest max runtime: for objects synced together by one walk."""
    return max(policies_, key=lambda p: p.max_runtime_minutes)

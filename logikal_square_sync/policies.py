"""Loads `policies.yaml` and turns each policy into Dagster's freshness terms."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

POLICIES_FILE = Path(__file__).with_name("policies.yaml")


class SyncPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval_minutes: int | None = None
    cron: str | None = None
    warn_after_minutes: int
    fail_after_minutes: int
    page_size: int = 1000
    max_attempts: int = 6

    @model_validator(mode="after")
    def _windows_in_order(self) -> SyncPolicy:
        if not 0 < self.warn_after_minutes < self.fail_after_minutes:
            raise ValueError("needs 0 < warn_after_minutes < fail_after_minutes")
        if self.interval_minutes is None and self.cron is None:
            raise ValueError("needs interval_minutes or cron")
        return self

    @property
    def freshness_policy(self) -> dg.FreshnessPolicy:
        return dg.FreshnessPolicy.time_window(
            fail_window=timedelta(minutes=self.fail_after_minutes),
            warn_window=timedelta(minutes=self.warn_after_minutes),
        )


class CatalogPolicy(SyncPolicy):
    overlap_minutes: int = Field(default=5, ge=0)
    full_refresh_days: int = Field(default=7, ge=1)


class OrdersPolicy(SyncPolicy):
    lookback_hours: int = 72
    location_group_size: int = 10
    history_start: date = date(2015, 1, 1)
    completeness_window_days: int = 7

    @model_validator(mode="after")
    def _square_limits(self) -> OrdersPolicy:
        if not 1 <= self.location_group_size <= 10:
            raise ValueError("location_group_size must be 1..10 (SearchOrders caps location_ids at 10)")
        if self.lookback_hours < 72:
            raise ValueError("lookback_hours must be >= 72: offline orders arrive up to 72 h late")
        return self


class InventoryPolicy(SyncPolicy):
    full_refresh_days: int = Field(default=7, ge=1)


class SquarePolicies(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locations: SyncPolicy
    catalog: CatalogPolicy
    orders: OrdersPolicy
    inventory: InventoryPolicy


class ProjectSyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tick_seconds: int = Field(default=300, gt=0)
    max_runs_per_tick: int = Field(default=50, gt=0)
    active_for_days: float = Field(default=14, gt=0)
    sweep_every_hours: float = Field(default=24, gt=0)
    dormant_warn_after_hours: float = Field(default=30, gt=0)
    dormant_fail_after_hours: float = Field(default=48, gt=0)

    @model_validator(mode="after")
    def _dormant_windows_in_order(self) -> ProjectSyncSettings:
        if self.dormant_warn_after_hours >= self.dormant_fail_after_hours:
            raise ValueError("needs dormant_warn_after_hours < dormant_fail_after_hours")
        return self


class LogikalPolicies(BaseModel):
    model_config = ConfigDict(extra="forbid")
    directories: SyncPolicy
    projects: SyncPolicy
    phases: SyncPolicy
    elevations: SyncPolicy
    parts_lists: SyncPolicy
    project_sync: ProjectSyncSettings = ProjectSyncSettings()


class Policies(BaseModel):
    model_config = ConfigDict(extra="forbid")
    square: SquarePolicies
    logikal: LogikalPolicies


class PolicyFileError(ValueError):
    pass


def load_policies(path: Path = POLICIES_FILE) -> Policies:
    try:
        raw = yaml.safe_load(path.read_text())
        return Policies.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}" for issue in error.errors()
        )
        raise PolicyFileError(f"{path}: invalid sync policy: {problems}") from None
    except yaml.YAMLError as error:
        raise PolicyFileError(f"{path}: not valid YAML: {error}") from None


@functools.cache
def policies() -> Policies:
    return load_policies()

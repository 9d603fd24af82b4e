"""Housekeeping of Dagster's storage: the run purge job and its schedule."""

import dagster as dg

from logikal_square_sync.maintenance.jobs import purge_job
from logikal_square_sync.maintenance.schedules import maintenance_schedules


def build_defs() -> dg.Definitions:
    """Built on call: the schedule follows policies.yaml, BACKGROUND_SYNC_ENABLED and SYNC_TIMEZONE then."""
    return dg.Definitions(jobs=[purge_job()], schedules=maintenance_schedules())

"""Alerting: the run-failure and staleness sensors and the resource that sends their messages."""

import dagster as dg

from logikal_square_sync.alerts.resource import alerts_resource_from_env
from logikal_square_sync.alerts.run_sensor import alert_on_run_failure
from logikal_square_sync.alerts.stale_sensor import alert_on_stale_assets


def build_defs() -> dg.Definitions:
    """Built on call, reading the alert settings and the assets' freshness policies as they are then."""
    return dg.Definitions(
        sensors=[alert_on_run_failure, alert_on_stale_assets],
        resources={"alerts": alerts_resource_from_env()},
    )

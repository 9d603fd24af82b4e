"""A small code location for the staleness sensor's tests: two assets with freshness policies, a check.

Loaded in-process by Dagster's own freshness daemon in the tests, like the daemon loads the real
code location, so the states the sensor reads are the ones the UI would show.
"""

from datetime import timedelta

import dagster as dg

WINDOW = dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=20), warn_window=timedelta(minutes=10))
ORDERS = dg.AssetKey(["square", "orders"])
LOCATIONS = dg.AssetKey(["square", "locations"])


@dg.asset(key=ORDERS, freshness_policy=WINDOW)
def orders() -> None:
    pass


@dg.asset(key=LOCATIONS, freshness_policy=WINDOW)
def locations() -> None:
    pass


class CheckOutcome(dg.ConfigurableResource):
    missing: list[str] = []


@dg.asset_check(asset=orders, name="orders_complete", blocking=False)
def orders_complete(outcome: CheckOutcome) -> dg.AssetCheckResult:
    """Like the real check: fails with ERROR severity and names the missing orders."""
    return dg.AssetCheckResult(
        passed=not outcome.missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(outcome.missing)} orders missing: {', '.join(outcome.missing)}"
        if outcome.missing
        else "all orders present",
    )


defs = dg.Definitions(
    assets=[orders, locations], asset_checks=[orders_complete], resources={"outcome": CheckOutcome()}
)

"""The LogiKal checks: per-project freshness (Dagster judges a partitioned asset as a whole, so we
name the stale projects), and parts lists LogiKal itself serves damaged."""

from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.logikal.assets import PROJECTS_KEY, logikal_directories, logikal_projects
from logikal_square_sync.logikal.engine.store.writes import SOURCE
from logikal_square_sync.logikal.engine.syncs.project_selection import (
    Staleness,
    load_project_states,
    name_unfetched,
    staleness,
    windows,
)
from logikal_square_sync.logikal.engine.walk.damaged_parts_lists import BrokenPartsList, broken_at_source
from logikal_square_sync.orchestration.rejected_checks import rejected_records_check
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.resource import WarehouseResource

CHECK_NAME = "project_contents_fresh"
READABLE_CHECK_NAME = "parts_lists_readable"


def project_staleness(engine: sa.Engine, now: datetime | None = None) -> Staleness:
    with engine.connect() as conn:
        states = load_project_states(conn)
        return name_unfetched(conn, staleness(states, now or utc_now(), policies().logikal.project_sync))


def _metadata(report: Staleness) -> dict[str, Any]:
    rows = sorted(report.fail + report.warn, key=lambda s: -s.age)[:50]
    table = "\n".join(
        f"| {s.name} | `{s.id}` | {s.age.total_seconds() / 60:.0f} | {'active' if s.active else 'dormant'} |"
        for s in rows
    )
    names = {s.id: s.name for s in report.fail + report.warn}
    elevations = "\n".join(
        f"| {names.get(u.project_id, u.project_id)} | {u.name} | `{u.id}` | {u.reason} |"
        for u in report.unfetched[:100]
    )
    return {
        "projects_checked": report.checked,
        "projects_past_warn": len(report.warn),
        "projects_past_fail": len(report.fail),
        "stalest": dg.MetadataValue.md(
            "| project | id | minutes since sync | kind |\n|---|---|---|---|\n" + table if rows else "none"
        ),
        "parts_lists_unfetched": len(report.unfetched),
        "unfetched_parts_lists": dg.MetadataValue.md(
            "| project | elevation | id | why |\n|---|---|---|---|\n" + elevations if elevations else "none"
        ),
    }


def evaluation(report: Staleness) -> dg.AssetCheckEvaluation:
    """The check's result as an event, for the project-sync sensor to record on each tick."""
    return dg.AssetCheckEvaluation(
        asset_key=PROJECTS_KEY,
        check_name=CHECK_NAME,
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR if report.fail else dg.AssetCheckSeverity.WARN,
        description=report.describe(),
        metadata=_metadata(report),
    )


@dg.asset_check(
    asset=logikal_projects,
    name=CHECK_NAME,
    blocking=False,
    description=(
        "Every live project's phases, elevations and parts lists are within their freshness window. "
        f"{windows(policies().logikal.project_sync)} A parts list that failing syncs (a locked "
        "elevation, an error) left unfetched counts from the first failure against the parts lists' "
        "windows, active project or not; the metadata names those elevations and why "
        "(`unfetched_parts_lists`). Fails (ERROR) naming the projects past their fail "
        "window, warns for those past the warn window. Runs with every `logikal/projects` materialization "
        "and on every tick of the project-sync sensor (values from policies.yaml)."
    ),
)
def project_contents_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    report = project_staleness(warehouse.engine)
    return dg.AssetCheckResult(
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR if report.fail else dg.AssetCheckSeverity.WARN,
        description=report.describe(),
        metadata=_metadata(report),
    )


def _broken_description(broken: list[BrokenPartsList], limit: int = 10) -> str:
    if not broken:
        return "Every stored current parts list is a readable SQLite database."
    named = "; ".join(
        f"{b.elevation_name} ({b.elevation_id}) of {b.project_name}: {b.error}" for b in broken[:limit]
    )
    more = f" and {len(broken) - limit} more" if len(broken) > limit else ""
    return (
        f"{len(broken)} parts list(s) broken at the source: LogiKal served the same damaged file on two "
        f"fetches, so it is stored as served (parse_status invalid, no glass rows) and not fetched again "
        f"until the elevation changes. Open the elevation in LogiKal and save it (or recalculate it) to "
        f"make LogiKal write a new file. {named}{more}"
    )


def readable_evaluation(engine: sa.Engine) -> dg.AssetCheckEvaluation:
    """The `parts_lists_readable` result as an event, for the project-sync sensor to record each tick."""
    with engine.connect() as conn:
        broken = broken_at_source(conn)
    return dg.AssetCheckEvaluation(
        asset_key=PROJECTS_KEY,
        check_name=READABLE_CHECK_NAME,
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        description=_broken_description(broken),
        metadata=_broken_metadata(broken),
    )


def _broken_metadata(broken: list[BrokenPartsList]) -> dict[str, Any]:
    rows = "\n".join(
        f"| {b.project_name} | {b.elevation_name} | `{b.elevation_id}` | {b.error} |" for b in broken[:100]
    )
    return {
        "parts_lists_broken_at_source": len(broken),
        "broken_parts_lists": dg.MetadataValue.md(
            "| project | elevation | id | why |\n|---|---|---|---|\n" + rows if rows else "none"
        ),
    }


@dg.asset_check(
    asset=logikal_projects,
    name=READABLE_CHECK_NAME,
    blocking=False,
    description=(
        "No live elevation's current parts list is broken at the source. A damaged download (cut short, "
        "not SQLite, failing SQLite's quick_check) is fetched again by the next sync and the stored copy "
        "kept; only when the same bytes arrive on two fetches is the file stored as `invalid`, and then "
        "this check fails (ERROR) naming the elevations, until LogiKal serves a readable file. Runs with "
        "every `logikal/projects` materialization and on every tick of the project-sync sensor."
    ),
)
def parts_lists_readable(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.engine.connect() as conn:
        broken = broken_at_source(conn)
    return dg.AssetCheckResult(
        passed=not broken,
        severity=dg.AssetCheckSeverity.ERROR,
        description=_broken_description(broken),
        metadata=_broken_metadata(broken),
    )


# Rows the warehouse refused (`store.writes.upsert_rows`): directories on their asset; projects, and the
# phases and elevations of their contents syncs, on the projects asset.
rejected_records_checks = [
    rejected_records_check(logikal_directories, SOURCE, ["directory"]),
    rejected_records_check(logikal_projects, SOURCE, ["project", "phase", "elevation"]),
]

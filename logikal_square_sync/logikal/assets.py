"""The LogiKal assets: directories → projects → phases → elevations → parts lists."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from logikal_square_sync.logikal.directory_tree_check import directory_tree_check, directory_tree_check_spec
from logikal_square_sync.logikal.engine.store.tree import deleted_project_ids
from logikal_square_sync.logikal.engine.syncs.directory_sync import sync_directories
from logikal_square_sync.logikal.engine.syncs.project_contents_sync import sync_project_contents
from logikal_square_sync.logikal.engine.syncs.project_list_sync import sync_projects
from logikal_square_sync.logikal.engine.walk.result import (
    ELEVATIONS,
    PARTS_LISTS,
    PHASES,
    ProjectContentsResult,
)
from logikal_square_sync.logikal.partitions import PROJECTS_PARTITIONS_NAME, logikal_projects_partitions
from logikal_square_sync.logikal.resource import LogikalResource
from logikal_square_sync.orchestration.freshness_policies import freshness_policy, policy_metadata
from logikal_square_sync.orchestration.report_metadata import report_metadata
from logikal_square_sync.policies import SyncPolicy, policies
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.asset_metadata import row_count, table_metadata
from logikal_square_sync.warehouse.resource import WarehouseResource

LOGIKAL = policies().logikal
OWNERS = ["team:data-engineering"]
KINDS = {"logikal", "python", "sql"}
GROUP = "logikal"
# The UI's descriptions quote the limit in force (policies.yaml `logikal.deletion_limit`).
DELETION_LIMIT = (
    f"{LOGIKAL.deletion_limit.max_share:.0%} of the live rows; {LOGIKAL.deletion_limit.always_allowed} "
    "may always go"
)

DIRECTORIES_KEY = dg.AssetKey(["logikal", "directories"])
PROJECTS_KEY = dg.AssetKey(["logikal", "projects"])
PHASES_KEY = dg.AssetKey(["logikal", "phases"])
ELEVATIONS_KEY = dg.AssetKey(["logikal", "elevations"])
PARTS_LISTS_KEY = dg.AssetKey(["logikal", "parts_lists"])
# Dagster's name for the rows of one partition (`dagster/row_count` counts the whole asset).
PARTITION_ROW_COUNT = "dagster/partition_row_count"


def _asset_properties(policy: SyncPolicy, *tables: sa.Table) -> dict[str, Any]:
    """What every LogiKal asset declares alike: its group, kinds and owners, its freshness, its tables."""
    return {
        "group_name": GROUP,
        "kinds": KINDS,
        "owners": OWNERS,
        "freshness_policy": freshness_policy(policy),
        "metadata": {**policy_metadata(policy), **table_metadata(*tables)},
    }


class TreeSyncConfig(dg.Config):
    allow_mass_deletion: bool = Field(
        default=False,
        description=(
            "Mark deleted what the source no longer lists even when that is more than the deletion limit "
            f"(logikal.deletion_limit in policies.yaml: {DELETION_LIMIT}): for a real mass deletion at "
            "the source, after a run refused it."
        ),
    )


@dg.asset(
    key=DIRECTORIES_KEY,
    **_asset_properties(LOGIKAL.directories, t.logikal_directories),
    pool="logikal_directories",
    check_specs=[directory_tree_check_spec(DIRECTORIES_KEY)],
    description=(
        "LogiKal's directory tree in `logikal_directories`, keyed by full path (`Demo/Sub 1`).\n\n"
        "One session walks the whole tree (any directory is selectable by path from directory state). "
        "Directories gone from the tree keep their row with `deleted_at`; a renamed directory is a new "
        "path. A 404 counts as gone only once the parent's listing confirms it, and a run that would mark "
        f"more of them deleted than the deletion limit allows ({DELETION_LIMIT}) fails instead "
        "(`allow_mass_deletion` accepts it). Each path is listed once: a listing naming the listed "
        "directory, an ancestor or a path listed elsewhere is left out and fails the check "
        "`directory_tree_well_formed`, while the rest of the tree syncs."
    ),
)
def logikal_directories(
    context: dg.AssetExecutionContext,
    config: TreeSyncConfig,
    logikal: LogikalResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    with logikal.session_pool(LOGIKAL.directories.max_attempts, context) as pool:
        result = sync_directories(pool, warehouse.engine, allow_mass_deletion=config.allow_mass_deletion)
    return dg.MaterializeResult(
        metadata={
            **report_metadata(result.report, warehouse.engine),
            "listing_entries_left_out": len(result.malformed),
            **row_count(warehouse.engine, t.logikal_directories),
        },
        check_results=[directory_tree_check(DIRECTORIES_KEY, result.malformed)],
    )


@dg.asset(
    key=PROJECTS_KEY,
    deps=[logikal_directories],
    **_asset_properties(LOGIKAL.projects, t.logikal_projects),
    pool="logikal_projects",
    description=(
        "LogiKal projects of every known directory in `logikal_projects`, keyed by GUID.\n\n"
        "Dates are LogiKal's Unix seconds as UTC timestamps. Every live project becomes a partition of "
        "`logikal_projects`, the per-project assets' partitions. A project no directory lists any more "
        "gets `deleted_at`, and so do its phases and elevations, and its partition is removed (its rows "
        "and run history stay); `is_deleted` is LogiKal's own soft delete. A run that would mark more of "
        f"them deleted than the deletion limit allows ({DELETION_LIMIT}) fails instead "
        "(`allow_mass_deletion` accepts it)."
    ),
)
def logikal_projects(
    context: dg.AssetExecutionContext,
    config: TreeSyncConfig,
    logikal: LogikalResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    with logikal.session_pool(LOGIKAL.projects.max_attempts, context) as pool:
        result = sync_projects(pool, warehouse.engine, allow_mass_deletion=config.allow_mass_deletion)
    instance = context.instance
    existing = set(instance.get_dynamic_partitions(PROJECTS_PARTITIONS_NAME))
    added = sorted(result.live_project_ids - existing)
    if added:
        instance.add_dynamic_partitions(PROJECTS_PARTITIONS_NAME, added)
        context.log.info(f"Added {len(added)} LogiKal project partition(s)")
    # Every deleted project, not only this run's: a partition left from before heals too. One
    # that comes back at the source is live again and gets its partition back above.
    with warehouse.engine.connect() as conn:
        removed = sorted(existing & (deleted_project_ids(conn) - result.live_project_ids))
    for key in removed:
        instance.delete_dynamic_partition(PROJECTS_PARTITIONS_NAME, key)
    if removed:
        context.log.info(f"Removed the partitions of {len(removed)} LogiKal project(s) deleted at the source")
    return dg.MaterializeResult(
        metadata={
            **report_metadata(result.report, warehouse.engine),
            "partitions_added": len(added),
            "partitions_removed": len(removed),
            "projects_vanished": len(result.vanished_project_ids),
            **row_count(warehouse.engine, t.logikal_projects),
        }
    )


class ProjectSyncConfig(dg.Config):
    refetch_parts_lists: bool = Field(
        default=False,
        description="Fetch every parts list again, changed or not (normally only new or changed ones).",
    )
    allow_mass_deletion: bool = Field(
        default=False,
        description=(
            "Mark deleted the phases and elevations the source no longer lists even when that is more of "
            "the project than the deletion limit allows (logikal.deletion_limit in policies.yaml: "
            f"{DELETION_LIMIT}): for a real mass deletion at the source, after a run refused it."
        ),
    )


_PARTS = {PHASES_KEY: PHASES, ELEVATIONS_KEY: ELEVATIONS, PARTS_LISTS_KEY: PARTS_LISTS}


def _per_project(
    key: dg.AssetKey, upstream: dg.AssetKey, policy: SyncPolicy, description: str, *tables: sa.Table
) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=[upstream],
        description=f"{description} Partitioned by project GUID.",
        partitions_def=logikal_projects_partitions,
        **_asset_properties(policy, *tables),
        skippable=True,  # the walk runs for a subset too (one asset selected in the UI)
    )


@dg.multi_asset(
    name="logikal_project_contents",
    specs=[
        _per_project(
            PHASES_KEY,
            PROJECTS_KEY,
            LOGIKAL.phases,
            "Phases of each LogiKal project in `logikal_phases`, keyed by (project_id, id): the "
            "default phase has the all-zero GUID in every project.",
            t.logikal_phases,
        ),
        _per_project(
            ELEVATIONS_KEY,
            PHASES_KEY,
            LOGIKAL.elevations,
            "Elevations of each LogiKal project in `logikal_elevations`, with `version_id` and "
            "`changed_at`, the change signals. Recycle-bin elevations are kept with "
            "`is_in_recycle_bin`; vanished ones get `deleted_at` once a listing in a fresh session "
            "confirms it, within the deletion limit per project "
            f"({DELETION_LIMIT}; `allow_mass_deletion` accepts more).",
            t.logikal_elevations,
        ),
        _per_project(
            PARTS_LISTS_KEY,
            ELEVATIONS_KEY,
            LOGIKAL.parts_lists,
            "Parts lists (SQLite files) of new or changed elevations, stored once per sha256 in "
            "`logikal_parts_list_files`, and parsed into `logikal_parts_lists` (the Elevations "
            "summary, `parse_status`/`parse_error`) and `logikal_elevation_glass`.",
            t.logikal_parts_lists,
            t.logikal_elevation_glass,
            t.logikal_parts_list_files,
        ),
    ],
    can_subset=True,
)
def logikal_project_contents(
    context: dg.AssetExecutionContext,
    config: ProjectSyncConfig,
    logikal: LogikalResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult]:
    """One LogiKal project's phases, elevations and parts lists, in one walk.

    The three assets share the walk (one session lists the project; parts
    lists fan out over the session pool), so `logins` and `api_calls` in each
    materialization are the walk's. Materializing one partition is a force sync.
    """
    include = {_PARTS[key] for key in context.selected_asset_keys}
    with logikal.session_pool(LOGIKAL.parts_lists.max_attempts, context, warehouse.engine) as pool:
        result = sync_project_contents(
            pool,
            warehouse.engine,
            context.partition_key,
            include=include,
            refetch_parts_lists=config.refetch_parts_lists,
            allow_mass_deletion=config.allow_mass_deletion,
        )
    selected = context.selected_asset_keys
    keys = [key for key in (PHASES_KEY, ELEVATIONS_KEY, PARTS_LISTS_KEY) if key in selected]
    reason = result.not_synced_because
    if reason is None and not context.instance.has_dynamic_partition(
        PROJECTS_PARTITIONS_NAME, context.partition_key
    ):
        # Removed meanwhile by logikal/projects: Dagster refuses materializations of a partition
        # that no longer exists, and the project is gone at the source anyway.
        reason = f"the partition of LogiKal project {result.project_name!r} was removed while it synced"
    if reason is not None:
        # A run of a deleted project (queued before its deletion, or launched by hand) succeeds:
        # an observation records why nothing was materialized. The outputs are skippable.
        for key in keys:
            context.log_event(
                dg.AssetObservation(
                    asset_key=key,
                    partition=context.partition_key,
                    metadata=_not_synced_metadata(result, reason),
                )
            )
        return
    for key in keys:
        metadata = {
            **_project_metadata(key, result, warehouse.engine),
            **_partition_rows(warehouse.engine, key, context.partition_key),
        }
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def _project_rows(key: dg.AssetKey, project_id: str) -> tuple[sa.Table, sa.ColumnElement[bool]]:
    """The table of `key` and the clause selecting the project's rows in it."""
    elevations = t.logikal_elevations
    if key == PHASES_KEY:
        return t.logikal_phases, t.logikal_phases.c.project_id == project_id
    if key == ELEVATIONS_KEY:
        return elevations, elevations.c.project_id == project_id
    of_project = sa.select(elevations.c.id).where(elevations.c.project_id == project_id)
    return t.logikal_parts_lists, t.logikal_parts_lists.c.elevation_id.in_(of_project)


def _partition_rows(engine: sa.Engine, key: dg.AssetKey, project_id: str) -> dict[str, int]:
    """`dagster/partition_row_count`, the project's rows, and `dagster/row_count`, the whole table's."""
    table, of_project = _project_rows(key, project_id)
    (in_partition,) = row_count(engine, table, of_project).values()
    return {**row_count(engine, table), PARTITION_ROW_COUNT: in_partition}


# What the walk cost, for an observation of a project that was not synced (no rows to report).
_WALK_KEYS = ("api_calls", "retries", "logins", "duration_seconds")


def _not_synced_metadata(result: ProjectContentsResult, reason: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"project": result.project_name, "not_synced": reason}
    if result.deleted_at is not None:
        metadata["deleted_at"] = dg.MetadataValue.timestamp(result.deleted_at)
    metadata["gone_at_source"] = result.gone_at_source
    walk = result.phases.metadata()
    metadata.update({key: walk[key] for key in _WALK_KEYS})
    return metadata


def _project_metadata(key: dg.AssetKey, result: ProjectContentsResult, engine: sa.Engine) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "project": result.project_name,
        **report_metadata(result.reports[_PARTS[key]], engine),
    }
    if key == PARTS_LISTS_KEY:
        metadata.update(
            {
                "parts_lists_fetched": result.parts_lists_fetched,
                "parts_lists_skipped": result.parts_lists_skipped,
                "parts_lists_failed": result.parts_lists_failed,
                # False: some parts list was left unfetched, so the project is not marked synced.
                "project_fully_synced": not result.parts_lists_failed,
                **{f"parse_{status}": count for status, count in sorted(result.parse_status.items())},
                "sibling_elevation_select": result.sibling_elevation_select,
            }
        )
        if result.failures:
            metadata["failures"] = dg.MetadataValue.md("\n".join(f"- {line}" for line in result.failures))
    return metadata

"""`logikal/directories:directory_tree_well_formed`: the listings a directory walk left out.

A listing that names the listed directory itself, an ancestor or a path listed
elsewhere is left out of the walk and the rest of the tree is synced
(`engine/syncs/directory_sync.py`). Failing the run instead would leave the directories
unmaterialized, and stale in Dagster's eyes, for as long as the source keeps the
fault, though every directory is in the warehouse; so the asset materializes and
this check, evaluated in the same run, fails (ERROR: the alert sensor reports it
once when it starts failing and once when it passes again) naming each path.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from logikal_square_sync.common.records import MalformedRecordError

CHECK_NAME = "directory_tree_well_formed"

# Enough to name the problem in an alert; the run's log has every one.
_NAMED_AT_MOST = 20


def directory_tree_check_spec(asset: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHECK_NAME,
        asset=asset,
        blocking=False,
        description=(
            "Every directory listing of the last walk named only new paths below the listed directory. "
            "Fails (ERROR) naming each entry the walk left out: a listing that names the listed "
            "directory itself or an ancestor (a cycle), or a path listed elsewhere. The rest of the "
            "tree is synced either way; a left-out path keeps the place where it was listed first."
        ),
    )


def directory_tree_check(
    asset: dg.AssetKey, malformed: Sequence[MalformedRecordError]
) -> dg.AssetCheckResult:
    if not malformed:
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name=CHECK_NAME,
            passed=True,
            description="Every directory listing named only new paths below the listed directory.",
            metadata={"listing_entries_left_out": 0},
        )
    named = [str(error) for error in malformed[:_NAMED_AT_MOST]]
    more = len(malformed) - len(named)
    paths = ", ".join(f"'{error.record_id}'" for error in malformed[:_NAMED_AT_MOST])
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=CHECK_NAME,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"LogiKal's directory listings are not a tree: {len(malformed)} entr"
            f"{'y' if len(malformed) == 1 else 'ies'} left out of the walk ({paths}"
            f"{f' and {more} more' if more else ''}); the rest of the tree is synced. "
            "Check these directories in LogiKal."
        ),
        metadata={
            "listing_entries_left_out": len(malformed),
            "left_out": dg.MetadataValue.md(
                "\n".join(f"- {line}" for line in named) + (f"\n- … and {more} more" if more else "")
            ),
        },
    )

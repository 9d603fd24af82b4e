"""Asset checks that fail while records of the asset are in quarantine (`rejected_records`), naming them.

A refused record no longer stops its sync (`warehouse/quarantine.py`), so
it needs a place where someone sees it: the check of the asset it belongs
to, which fails naming each record, why it was refused and since when. It
passes again once a later sync has written every one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from logikal_square_sync.warehouse.quarantine import quarantined
from logikal_square_sync.warehouse.resource import WarehouseResource

CHECK_NAME = "no_rejected_records"
# Named one by one in the description and the metadata table; the count covers the rest.
_NAMED = 20


def rejected_records_check(
    asset: dg.AssetsDefinition, source: str, object_types: Sequence[str]
) -> dg.AssetChecksDefinition:
    """A check on `asset` failing while records of these types from `source` are in `rejected_records`."""
    types = list(object_types)

    @dg.asset_check(asset=asset, name=CHECK_NAME, blocking=False)
    def no_rejected_records(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        rows = quarantined(warehouse.engine, source, types)
        named = [f"{row.object_type} {row.id!r} ({row.reason})" for row in rows[:_NAMED]]
        more = f" and {len(rows) - _NAMED} more" if len(rows) > _NAMED else ""
        description = (
            f"{len(rows)} {source} record(s) the warehouse refused are in rejected_records: "
            + "; ".join(named)
            + more
            if rows
            else f"no {source} record of this asset is in rejected_records"
        )
        table = "\n".join(
            f"| {row.object_type} | `{row.id}` | {row.reason} | {row.first_seen.isoformat()} "
            f"| {row.last_seen.isoformat()} |"
            for row in rows[:_NAMED]
        )
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "rejected_records": len(rows),
                "records": dg.MetadataValue.md(
                    "| type | id | reason | first seen | last seen |\n|---|---|---|---|---|\n" + table
                    if rows
                    else "none"
                ),
            },
        )

    no_rejected_records.__doc__ = (
        f"No {source} {', '.join(types)} is in rejected_records (records the warehouse refused); "
        "fails naming each one, why and since when."
    )
    return no_rejected_records

"""What the UI still shows from a run: the latest event of an asset, a partition or a check it holds.

Deleting a run deletes its events. If one of them is the latest materialization of an asset
(or of one project's partition), the asset page would fall back to an older one or show the
asset as never materialized; if it is the latest materialization attempt, a failed partition
would look materialized; if it is the latest execution of an asset check, the check's status
and its link to the run would go. Such a run is kept, however old.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

_ASSET_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}
_CHECK_EVENTS = {
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
}


def _label(key: dg.AssetKey, partition: str | None) -> str:
    return key.to_user_string() + (f" [{partition}]" if partition is not None else "")


def _latest_run_id(result: dg.EventRecordsResult) -> str | None:
    return result.records[0].run_id if result.records else None


def _asset_events_held(instance: dg.DagsterInstance, run_id: str) -> Iterator[str]:
    # Compared by run id, never by storage id: on SQLite a run's own event ids (its shard) and
    # the asset index's ids are different counters.
    partitions_by_key = instance.get_asset_partitions_for_run(run_id, _ASSET_EVENTS)
    for key, partitions in partitions_by_key.items():
        for partition in partitions:
            records_filter = dg.AssetRecordsFilter(
                asset_key=key, asset_partitions=[partition] if partition is not None else None
            )
            if _latest_run_id(instance.fetch_materializations(records_filter, limit=1)) == run_id:
                yield f"the latest materialization of {_label(key, partition)}"
                continue
            planned = instance.get_latest_planned_materialization_info(key, partition)
            if planned is not None and planned.run_id == run_id:
                yield f"the latest materialization attempt of {_label(key, partition)}"


def _check_keys(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetCheckKey]:
    keys: set[dg.AssetCheckKey] = set()
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=_CHECK_EVENTS, limit=1000)
        for record in page.records:
            event = record.event_log_entry.dagster_event
            data = event.event_specific_data if event is not None else None
            key = getattr(data, "asset_check_key", None)
            if isinstance(key, dg.AssetCheckKey):
                keys.add(key)
        if not page.has_more:
            return keys
        cursor = page.cursor


def _check_executions_held(instance: dg.DagsterInstance, run_id: str) -> Iterator[str]:
    for key in sorted(_check_keys(instance, run_id), key=str):
        latest = instance.get_latest_asset_check_evaluation_record(key)
        if latest is not None and latest.run_id == run_id:
            yield f"the latest execution of check {key.asset_key.to_user_string()}:{key.name}"


def latest_events_held(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Why the run must stay (empty: nothing in it is the latest of anything)."""
    return [*_asset_events_held(instance, run_id), *_check_executions_held(instance, run_id)]

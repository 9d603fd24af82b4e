"""What an object plugs into the incremental sync (`incremental_sync.py`): its call, rows and tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.square.engine.client import Body, SquareClient
from logikal_square_sync.square.engine.store import Changes

Row = dict[str, Any]
RowsByTable = dict[sa.Table, list[Row]]


@dataclass(frozen=True)
class Reading:
    """What a run has read once its last page is in: how far the watermark may move."""

    run_started: datetime
    overlap: timedelta
    newest: datetime | None  # the newest stamp of every row read
    newest_on_first_page: datetime | None  # the newest stamp on the run's first page
    changed_meanwhile: bool  # the probe after the last page found changes since the run started


@dataclass(frozen=True)
class IncrementalObject:
    """One object's parts of the sync: its call, its rows, its tables, its watermark rule."""

    watermark: str  # its `sync_state` stream, which also names its other streams and its decode thread
    # The tables written, in order, and how `rejected_records` names their rows.
    tables: Mapping[sa.Table, str]
    records: str  # the key under which a page holds its records
    newer_by: str  # the column by which, of two copies of a row, the greater is the newer
    stamped_by: str  # the column of the time each row was last changed at the source
    overlap: timedelta  # how far before the watermark an incremental read starts
    request: Callable[[int, datetime | None], Body]  # the first request: page size, changes since (or all)
    pages: Callable[[SquareClient, Callable[[], Body]], Iterator[Body]]  # the call, given the request
    rows: Callable[[list[Any], datetime], RowsByTable]  # a page's records as rows, given `synced_at`
    write: Callable[[sa.Connection, sa.Table, list[Row]], Changes]  # one table's rows of a batch
    covered: Callable[[Reading], datetime | None]  # where the watermark may move when the result is in
    # Asked after the last page, whether anything changed since the given time (`Reading.changed_meanwhile`).
    changed_since: Callable[[SquareClient, datetime], bool] | None = None
    # A tombstone of a row its batch already holds takes what it lacks from the stored row, which must be
    # the held copy, written first: such a page starts a batch of its own.
    tombstones_start_batches: bool = False
    # A copy no newer than one an earlier batch of the run held would not be written: dropped while batching.
    drops_copies_batched_before: bool = False

    @property
    def last_full_refresh(self) -> str:
        """The `sync_state` stream of the last full refresh's start."""
        return f"{self.watermark}/full_refresh_at"

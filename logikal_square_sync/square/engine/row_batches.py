"""Rows of consecutive pages merged into one batch, a transaction's worth (`batches.py`).

Of each row a batch holds the newest copy by the object's `newer_by` column, as
upserts of the pages in turn would leave it, and the newest `stamped_by` time
read, from which the watermark moves.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from logikal_square_sync.square.engine.incremental_object import IncrementalObject, Row, RowsByTable
from logikal_square_sync.warehouse.quarantine import Rejection

TableRow = tuple[sa.Table, Row]


@dataclass
class Page:
    read: int
    rows: RowsByTable
    is_last: bool
    changed_meanwhile: bool
    rejected: list[Rejection]


def _key_names(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


@dataclass
class RowBatch:
    """Consecutive pages' rows by table and key: of each row the newest copy, as upserts in turn keep."""

    kind: IncrementalObject
    # The newest copy of each row put into the run's batches so far (`drops_copies_batched_before`).
    batched_before: dict[sa.Table, dict[Hashable, Any]] | None = None
    keys: dict[sa.Table, Callable[[Row], Hashable]] = field(init=False)
    rows: dict[sa.Table, dict[Hashable, Row]] = field(init=False)
    read: int = 0
    pages: int = 0
    last: bool = False
    changed_meanwhile: bool = False
    newest: datetime | None = None
    newest_on_first_page: datetime | None = None
    rejected: list[Rejection] = field(default_factory=list)  # records that failed validation

    def __post_init__(self) -> None:
        self.keys = {table: operator.itemgetter(*_key_names(table)) for table in self.kind.tables}
        self.rows = {table: {} for table in self.kind.tables}

    @property
    def size(self) -> int:
        return sum(len(by_key) for by_key in self.rows.values())

    def add(self, page: Page) -> bool:
        if self.kind.tombstones_start_batches and self.pages and self._holds_a_tombstoned_row(page):
            return False
        stamped_by, newer_by = self.kind.stamped_by, self.kind.newer_by
        page_newest: datetime | None = None
        for table, rows in page.rows.items():
            held, key_of = self.rows[table], self.keys[table]
            before = self.batched_before[table] if self.batched_before is not None else None
            for row in rows:
                if page_newest is None or row[stamped_by] > page_newest:
                    page_newest = row[stamped_by]
                key, newness = key_of(row), row[newer_by]
                current = held.get(key)
                if current is None:
                    previous = before.get(key) if before is not None else None
                    if previous is not None and previous >= newness:
                        continue
                # Ties keep the copy read first: the upsert writes only a strictly newer one.
                elif newness <= current[newer_by]:
                    continue
                held[key] = row
                if before is not None:
                    before[key] = newness
        if self.pages == 0:
            self.newest_on_first_page = page_newest
        if page_newest is not None and (self.newest is None or page_newest > self.newest):
            self.newest = page_newest
        self.read += page.read
        self.pages += 1
        self.last = page.is_last
        self.changed_meanwhile = page.changed_meanwhile
        self.rejected += page.rejected
        return True

    def _holds_a_tombstoned_row(self, page: Page) -> bool:
        return any(
            row["is_deleted"] and self.keys[table](row) in self.rows[table]
            for table, rows in page.rows.items()
            for row in rows
        )

    def records(self) -> list[TableRow]:
        return [(table, row) for table, by_key in self.rows.items() for row in by_key.values()]


def batches_of(kind: IncrementalObject) -> Callable[[], RowBatch]:
    """New batches for one run: where copies batched before are dropped, the batches share them."""
    batched_before: dict[sa.Table, dict[Hashable, Any]] | None = (
        {table: {} for table in kind.tables} if kind.drops_copies_batched_before else None
    )
    return lambda: RowBatch(kind, batched_before)


def record_id(table: sa.Table, row: Row) -> str:
    """A row's id in `rejected_records`: its primary key, joined by '/'."""
    return "/".join(str(row[name]) for name in _key_names(table))

"""Several pages per transaction: consecutive pages merged into batches, each written in one transaction.

Writing page by page made every page of 1,000 records a transaction of its own
(a key lookup, a COPY, a commit, a pooled connection checked out and pinged),
which costs more than fetching a cheap page (an inventory page takes 20-50 ms).
A batch ends once it holds `rows` rows, once `seconds` have passed since its
first page arrived (checked as each page arrives), or with the last page; a
page is never split, so a batch holds at least one page. The syncs that batch
move their watermark only with the last page of the whole result, in the
transaction of the batch that holds it, so a crash between batches, or in the
middle of one, loses nothing and duplicates nothing: the next run reads again
from the watermark committed last, and the upserts write each row once by key.

An error while reading (a malformed record, a failed request) first hands over
the pages read before it as a batch of their own, then is raised: everything
read before the error is written, as it was page by page.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

P = TypeVar("P", contravariant=True)


class Batch(Protocol[P]):
    """Pages merged, ready to be written in one transaction."""

    @property
    def size(self) -> int:
        """How many rows the batch would write."""
        ...

    def add(self, page: P) -> bool:
        """Merges `page` in, or returns False, taking nothing, if it must start a batch of its own.

        An empty batch takes every page.
        """
        ...


@dataclass(frozen=True)
class BatchLimits:
    rows: int
    seconds: float


PageT = TypeVar("PageT")
BatchT = TypeVar("BatchT", bound="Batch[Any]")


@dataclass
class _Open(Generic[BatchT]):
    batch: BatchT
    opened: float


def batched(
    pages: Iterable[PageT],
    new_batch: Callable[[], BatchT],
    limits: BatchLimits,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[BatchT]:
    """The pages of `pages`, in order, merged into batches of at most `limits` (see the module)."""
    current: _Open[BatchT] | None = None
    iterator = iter(pages)
    while True:
        try:
            page = next(iterator)
        except StopIteration:
            break
        except Exception:
            if current is not None:
                yield current.batch
            raise
        if current is not None and not current.batch.add(page):
            yield current.batch
            current = None
        if current is None:
            current = _Open(new_batch(), clock())
            if not current.batch.add(page):
                raise RuntimeError("an empty batch refused a page")
        if current.batch.size >= limits.rows or clock() - current.opened >= limits.seconds:
            yield current.batch
            current = None
    if current is not None:
        yield current.batch

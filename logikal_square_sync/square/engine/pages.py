"""Helpers for paged reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def with_last_flag(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Yields `(item, is_last)`: lets a sync commit its watermark with the last page.

    When reading the next item fails (a malformed record, a failed request), the item
    already read is handed on first, as not the last, and then the error is raised: what
    was read before an error is written, as it would be without the look-ahead.
    """
    iterator = iter(items)
    current = next(iterator, _END)
    while current is not _END:
        try:
            following = next(iterator, _END)
        except Exception:
            yield current, False  # type: ignore[misc]
            raise
        yield current, following is _END  # type: ignore[misc]
        current = following

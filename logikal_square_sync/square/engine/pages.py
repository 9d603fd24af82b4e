"""Helpers for paged reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def with_last_flag(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Yields `(item, is_last)`: lets a sync commit its watermark with the last page."""
    iterator = iter(items)
    current = next(iterator, _END)
    while current is not _END:
        following = next(iterator, _END)
        yield current, following is _END  # type: ignore[misc]
        current = following

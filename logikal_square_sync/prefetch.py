"""Read one page ahead while the current page is written.

Fetching (network, JSON decoding) and writing (the database) then overlap,
so a sync costs about the slower of the two instead of their sum. Memory
stays bounded: at most `depth` pages wait in the queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(pages: Iterable[T], depth: int = 3) -> Iterator[T]:
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        buffer.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as error:  # handed to the consumer, re-raised there
            buffer.put(_Failure(error))

    producer = threading.Thread(target=produce, name="page-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish its request.
        while not buffer.empty():
            buffer.get_nowait()
        producer.join(timeout=120)


def with_last_flag(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Yields `(item, is_last)`: lets a sync commit its watermark with the last page."""
    iterator = iter(items)
    current = next(iterator, _DONE)
    while current is not _DONE:
        following = next(iterator, _DONE)
        yield current, following is _DONE  # type: ignore[misc]
        current = following

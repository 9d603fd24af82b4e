"""Decode in one thread, write in another: a bounded hand-over between a page producer and the writer.

A sync spends its CPU decoding JSON and turning records into rows, and its
waits on the database (COPY, commit). With both in one thread the database's
time adds to the decoding time; here the next pages are decoded and
validated while the writer's transaction runs on the server (psycopg
releases the GIL while it waits). The queue is bounded, so at most `depth`
prepared pages wait in memory, and pages reach the writer in order: the
writer commits each page, or the pages ready by then (`batches`), with its
watermark, so every commit remains a checkpoint. An error while producing
(a malformed record, a failed request) reaches the writer after the pages
before it, exactly where a one-thread loop would have raised it; an error in
the writer stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
_NOTHING = object()
# How often a producer blocked on a full queue looks whether the writer gave up.
_POLL_SECONDS = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetched(Generic[T]):
    """Iterates `produce()` in a background thread, at most `depth` items ahead of the consumer."""

    def __init__(self, produce: Callable[[], Iterable[T]], *, depth: int = 2, name: str = "prefetch") -> None:
        self._produce = produce
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            iterator = iter(self._produce())
            try:
                for item in iterator:
                    if not self._put(item):
                        return
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put(_Failure(error))
            return
        self._put(_DONE)

    def _received(self, item: object) -> T | None:
        """`item` as taken from the queue: None at the end, the producer's error raised."""
        if item is _DONE:
            return None
        if isinstance(item, _Failure):
            raise item.error
        return item  # type: ignore[return-value]

    def __iter__(self) -> Iterator[T]:
        for batch in self.batches(lambda _batch, _item: False):
            yield from batch

    def batches(self, fits: Callable[[list[T], T], bool]) -> Iterator[list[T]]:
        """The items in consecutive lists: the next item (waited for), then each one after it that is
        already produced, while `fits(batch, item)`.

        A consumer slower than the producer so catches up in fewer, larger steps (a transaction for
        several pages), and one that keeps up is never kept waiting for a batch to fill. An error of
        the producer comes after a batch of the items before it.
        """
        self._thread.start()
        held: object = _NOTHING
        try:
            while True:
                item = self._received(self._queue.get() if held is _NOTHING else held)
                held = _NOTHING
                if item is None:
                    return
                batch = [item]
                while True:
                    try:
                        following = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if following is _DONE or isinstance(following, _Failure) or not fits(batch, following):  # type: ignore[arg-type]
                        held = following
                        break
                    batch.append(following)  # type: ignore[arg-type]
                yield batch
        finally:
            self._stop.set()
            self._thread.join()

"""The decode/write hand-over: in order, bounded, errors where a one-thread loop raises them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from logikal_square_sync.square.engine.pipeline import Prefetched


def test_items_arrive_in_order_and_the_producer_stays_at_most_depth_ahead() -> None:
    produced: list[int] = []
    ahead: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            produced.append(i)
            yield i

    consumed = []
    for item in Prefetched(produce, depth=2):
        consumed.append(item)
        ahead.append(len(produced) - len(consumed))
    assert consumed == list(range(50))
    # the queue holds `depth`, and the producer may hold one more it cannot hand over yet
    assert max(ahead) <= 3


def test_a_producer_error_comes_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 is malformed")

    consumed = []
    with pytest.raises(ValueError, match="page 3 is malformed"):
        for item in Prefetched(produce):
            consumed.append(item)
    assert consumed == [1, 2]


def test_a_consumer_error_stops_the_producer_and_closes_its_iterator() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def produce() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    with pytest.raises(RuntimeError, match="write failed"):
        for item in Prefetched(produce, depth=1):
            if item == 3:
                raise RuntimeError("write failed")
    assert closed.is_set()  # the iteration has ended (and joined) before the error propagates
    assert len(produced) <= 6


def test_batches_take_what_is_ready_in_order_and_the_error_after_them() -> None:
    produced_all = threading.Event()

    def produce() -> Iterator[int]:
        yield from range(5)
        produced_all.set()
        raise ValueError("page 6 is malformed")

    pages = Prefetched(produce, depth=10)
    batches = pages.batches(lambda batch, item: sum(batch) + item <= 6)
    first = next(batches)
    produced_all.wait(timeout=10)  # the rest is queued before the writer asks again
    seen = [first]
    with pytest.raises(ValueError, match="page 6 is malformed"):
        for batch in batches:
            seen.append(batch)
    assert [item for batch in seen for item in batch] == [0, 1, 2, 3, 4]
    # Once everything was ready, batches fill up to the limit; a page is never split.
    assert seen[1:] and all(sum(batch) <= 6 or len(batch) == 1 for batch in seen)
    assert len(seen) < 5

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

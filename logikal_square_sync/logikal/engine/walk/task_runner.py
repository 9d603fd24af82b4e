"""Runs tasks on pooled sessions in parallel, adding sessions only when they pay.

A task names the `Target` it needs and its estimated seconds. Workers take
the tasks of the lowest `priority` first (listings before the parts lists
they reveal), among them the most expensive first (largest-first keeps the
last session from finishing long after the others), borrow the best-placed
session from the pool and may queue follow-up tasks (the directory walk
discovers its work as it goes). A task that is no longer `wanted` when its
turn comes is dropped before it borrows a session. A further worker, with its
own login, starts only while the queued work exceeds what a login costs; so
an unchanged project is walked by one session, and a first sync, whose
sessions log in before the work is known, starts a worker for each of them.

The first unexpected error stops the hand-out of new tasks; running tasks
finish, every session goes back to the pool, and the error is raised.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from logikal_square_sync.logikal.engine.client.navigation import Target
from logikal_square_sync.logikal.engine.client.session import LogikalSession
from logikal_square_sync.logikal.engine.client.session_pool import SessionPool


@dataclass
class Task:
    target: Target
    cost: float
    run: Callable[[LogikalSession, TaskQueue], None]
    label: str = ""
    priority: int = 0
    wanted: Callable[[], bool] | None = None


@dataclass(order=True)
class _Entry:
    priority: int
    cost: float
    sequence: int
    task: Task = field(compare=False)


class TaskQueue:
    def __init__(self, pool: SessionPool, max_workers: int, spawn_threshold: float) -> None:
        self.pool = pool
        self.max_workers = max_workers
        self.spawn_threshold = spawn_threshold
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._sequence = itertools.count()
        self._pending_cost = 0.0
        self._in_flight = 0
        self._waiting = 0
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def put(self, task: Task) -> None:
        """Queue a follow-up task (from inside a running task)."""
        with self._cond:
            self._push(task)
            self._cond.notify()
            self._maybe_spawn()

    def _push(self, task: Task) -> None:
        heapq.heappush(self._heap, _Entry(task.priority, -task.cost, next(self._sequence), task))
        self._pending_cost += task.cost

    @property
    def stopping(self) -> bool:
        """A task failed: running tasks should end at their next step."""
        return bool(self._errors)

    def _maybe_spawn(self) -> None:
        # Called with the lock held. A worker is added when nobody is free to
        # take the queued work and that work outweighs the new worker's login.
        if len(self._threads) >= self.max_workers or self._errors:
            return
        if self._waiting == 0 and self._pending_cost >= self.spawn_threshold:
            self._spawn()

    def _spawn(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"logikal-worker-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _take(self) -> Task | None:
        with self._cond:
            while not self._heap and self._in_flight and not self._errors:
                self._waiting += 1
                self._cond.wait()
                self._waiting -= 1
            if self._errors or not self._heap:
                self._cond.notify_all()
                return None
            entry = heapq.heappop(self._heap)
            self._pending_cost -= entry.task.cost
            self._in_flight += 1
            self._maybe_spawn()
            return entry.task

    def _work(self) -> None:
        while (task := self._take()) is not None:
            try:
                if task.wanted is not None and not task.wanted():
                    continue
                session = self.pool.acquire(task.target)
                try:
                    task.run(session, self)
                finally:
                    self.pool.release(session)
            except BaseException as error:  # noqa: BLE001 - re-raised by run_tasks in the caller's thread
                with self._cond:
                    self._errors.append(error)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def start(self, tasks: Iterable[Task], initial_workers: int) -> None:
        with self._cond:
            for task in tasks:
                self._push(task)
            # Sessions already logged in (or logging in) each get a worker, even before
            # there is a task for each: the work they are for is queued by the first tasks.
            for _ in range(min(max(initial_workers, 1), self.max_workers)):
                self._spawn()

    def join(self) -> None:
        # Threads may start other threads while we wait: loop until none is left.
        joined = 0
        while True:
            with self._cond:
                if joined == len(self._threads):
                    break
                thread = self._threads[joined]
            thread.join()
            joined += 1
        if self._errors:
            raise self._errors[0]


def run_tasks(
    pool: SessionPool,
    tasks: Iterable[Task],
    *,
    max_workers: int | None = None,
    spawn_threshold: float | None = None,
) -> None:
    """Run `tasks` (and whatever they queue) to completion on up to `max_workers` sessions."""
    queue = TaskQueue(
        pool,
        max_workers=max_workers or pool.size,
        spawn_threshold=pool.costs.new_phase_session if spawn_threshold is None else spawn_threshold,
    )
    queue.start(tasks, initial_workers=pool.ready_or_warming)
    queue.join()

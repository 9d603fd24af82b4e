"""Callbacks that run between the pages of a search: edits made while a client pages.

`SquareSandbox.after_page("catalog_search", 2, edit)` runs `edit` once the
second page served from then on has been rendered and before it is sent, so
the client cannot ask for page 3 before the edit is done: a test can change
the data (and move a `ManualClock` on) at an exact point of a sync without
racing it. A page counts when it is answered 200 in full; a faulted answer
does not count.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .faults import ENDPOINTS

log = logging.getLogger(__name__)


@dataclass
class PageHook:
    endpoint: str
    page: int  # 1-based, counted from when the hook was added
    callback: Callable[[], object]
    repeat: bool = False  # also after every `page`-th page after that
    start: int = 0  # pages of the endpoint already served when the hook was added
    runs: int = 0
    error: BaseException | None = None
    ran: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def assert_ran(self) -> None:
        """Fails unless the callback has run, and re-raises what it raised."""
        if self.error is not None:
            raise AssertionError(f"the page hook on {self.endpoint} failed: {self.error!r}") from self.error
        if not self.ran.is_set():
            raise AssertionError(f"page {self.page} of {self.endpoint} was never served")

    def _due(self, served: int) -> bool:
        n = served - self.start
        return n == self.page or (self.repeat and n > 0 and n % self.page == 0)


class PageHooks:
    def __init__(self) -> None:
        self._hooks: list[PageHook] = []
        self._served: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(
        self, endpoint: str, page: int, callback: Callable[[], object], *, repeat: bool = False
    ) -> PageHook:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
        if page < 1:
            raise ValueError(f"page must be 1 or more, got {page}")
        with self._lock:
            hook = PageHook(endpoint, page, callback, repeat, start=self._served[endpoint])
            self._hooks.append(hook)
        return hook

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()

    def served(self, endpoint: str) -> None:
        """Counts one page of `endpoint` and runs the hooks due after it, in the caller's thread."""
        with self._lock:
            self._served[endpoint] += 1
            due = [h for h in self._hooks if h.endpoint == endpoint and h._due(self._served[endpoint])]
            self._hooks = [h for h in self._hooks if h.repeat or h not in due]
        for hook in due:
            try:
                hook.callback()
            except Exception as error:  # kept for the test to see: the client just gets its page
                log.exception("page hook on %s failed", endpoint)
                hook.error = error
            hook.runs += 1
            hook.ran.set()

"""cProfile of every thread of a sync, and where each thread's time went, as a table.

A sync runs in three threads (`square/engine/pipeline.py`, `client.pages`): the page fetcher
(HTTP), the producer (decoding pages, building rows) and the writer (COPY, statements,
commits). cProfile follows one thread, so each gets a profiler of its own, started by
`threading.setprofile` as the thread starts; `phases` then reads each thread's time in the
functions that stand for one phase (their cumulative time: a phase's waits included).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# What each phase is, by (file suffix, function name) of the functions whose cumulative time it is.
PHASES: dict[str, tuple[tuple[str, str], ...]] = {
    "HTTP (fetcher thread: request and wait for a page)": (("square/engine/client.py", "_post_raw"),),
    "decode (JSON into typed structs)": (
        ("square/engine/records.py", "decode_orders_page"),
        ("square/engine/records.py", "decode_order_entries_page"),
    ),
    "row building (structs into rows)": (("square/engine/order_sync.py", "_prepare_page"),),
    "producer waiting for the writer (queue full)": (("square/engine/pipeline.py", "_put"),),
    "writer waiting for pages (queue empty)": (("/queue.py", "get"),),
    "COPY (encode + send + server)": (("warehouse/copy.py", "copy_rows"),),
    "key probe (which orders are stored)": (("warehouse/upsert.py", "existing_keys"),),
    "guarded upsert of stored orders (staging + INSERT … ON CONFLICT)": (
        ("warehouse/upsert.py", "_guarded_upsert"),
    ),
    "line items of rewritten orders deleted": (("square/engine/store.py", "_delete_line_items"),),
    "watermark": (("warehouse/state.py", "set_watermarks"),),
    "commit": (("sqlalchemy/engine/base.py", "_commit_impl"),),
    "writer total (a transaction per batch of pages)": (("warehouse/quarantine.py", "write_quarantining"),),
}


@contextmanager
def profiled_threads() -> Iterator[dict[str, cProfile.Profile]]:
    """Profiles this thread and every thread started inside the block, by thread name."""
    profiles: dict[str, cProfile.Profile] = {}

    def start(_frame: object, _event: str, _arg: object) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles[threading.current_thread().name] = profile
        profile.enable()

    main = cProfile.Profile()
    profiles["writer (main)"] = main
    threading.setprofile(start)
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        threading.setprofile(None)
        for profile in profiles.values():
            profile.disable()


def phases(profiles: dict[str, cProfile.Profile]) -> list[tuple[str, str, float, int]]:
    """(phase, thread, seconds, calls) for each phase found in a thread's profile."""
    found = []
    for thread, profile in profiles.items():
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        for phase, functions in PHASES.items():
            seconds, calls = 0.0, 0
            for (path, _line, name), (_cc, ncalls, _tt, cumulative, _callers) in stats.items():
                if any(path.endswith(suffix) and name == wanted for suffix, wanted in functions):
                    seconds += cumulative
                    calls += ncalls
            if calls:
                found.append((phase, thread, seconds, calls))
    return found


def dump(profiles: dict[str, cProfile.Profile], prefix: str) -> list[str]:
    """Each thread's profile in `prefix.<thread>.prof` (for `python -m pstats`); the files written."""
    paths = []
    for thread, profile in profiles.items():
        path = f"{prefix}.{thread.split()[0]}.prof"
        profile.dump_stats(path)
        paths.append(path)
    return paths

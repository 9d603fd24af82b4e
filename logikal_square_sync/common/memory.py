"""Gives freed heap memory back to the operating system during long syncs.

A full orders sync allocates and frees a few MB per page in three threads
(fetch, decode, write). glibc's allocator keeps what a thread freed in that
thread's arena and raises its mmap threshold after big frees, so the process
RSS grew with the number of pages (254 MB at 1M orders before the decode
thread, 311 MB with it) though live data stays at a few pages. `malloc_trim`
returns the free pages; elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

"""A benchmark child's own peak RSS (standard library only: dlt's virtualenv imports it too)."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's own peak RSS since it started its program.

    Not getrusage's `ru_maxrss`: Linux carries it over an exec from the process that forked
    (the driver, holding a sandbox of up to 1M orders), so a child would report the driver's
    peak. The kernel's high-water mark of the current address space (`VmHWM`) starts anew at
    the exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: an upper bound

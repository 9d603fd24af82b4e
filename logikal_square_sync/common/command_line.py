"""What the package's commands share: their settings come from the environment, and a refused one
ends the command with exit status 2 (a usage error) and the reason on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def setting_or_exit(read: Callable[[], T], refused: type[Exception], command: str) -> T:
    """`read()`; when it raises `refused`, the command ends with exit status 2, naming the setting."""
    try:
        return read()
    except refused as error:
        print(f"{command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None

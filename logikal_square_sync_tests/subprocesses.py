"""Python in a process of its own, for what one process cannot show (imports, a fresh code location)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Mapping
from pathlib import Path


def run_python(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, unset: Collection[str] = ()
) -> subprocess.CompletedProcess[str]:
    """This interpreter run with `args`: this process's environment with `env` laid over it and the
    `unset` names removed, its output captured as text, five minutes at most."""
    environment = {key: value for key, value in {**os.environ, **(env or {})}.items() if key not in unset}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

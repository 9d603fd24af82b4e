"""Whether this process belongs to a production deployment: Dagster's own storage is a database server.

The production dagster.yaml (compose, the topology test, the Helm chart's instance) keeps runs,
events and schedules in PostgreSQL; `dagster dev`, the demo and the tests keep them in SQLite
files. That storage, as $DAGSTER_HOME/dagster.yaml names it, is what every Dagster process of one
deployment shares: the code server, the daemon, each run worker (the image holds the
repository's file), a Kubernetes run pod (its launcher mounts the chart's instance file). The
DAGSTER_PG_* variables are no such signal: the Helm chart writes the host into the file
instead, and a developer may have them set from .env while running `dagster dev` on SQLite.
"""

from __future__ import annotations

import os
from pathlib import Path

# Dagster's storage libraries for a database server (PostgreSQL in production; MySQL alike).
_SERVER_STORAGE = ("dagster_postgres", "dagster_mysql")


def production_storage() -> str | None:
    """Where dagster.yaml keeps Dagster's runs in a database server (for messages), or None.

    None without DAGSTER_HOME or its dagster.yaml: Dagster's storage is then SQLite (in a
    temporary folder under `dagster dev`).
    """
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home or not (Path(home) / "dagster.yaml").is_file():
        return None
    # Not exported by `dagster`: Dagster's own reading of dagster.yaml (its `storage` section or
    # the older per-store sections) into the classes it would load. It connects to nothing and
    # leaves the DAGSTER_PG_* references unresolved, so it is cheap and safe at definitions load.
    from dagster._core.instance.ref import InstanceRef

    storage = InstanceRef.from_dir(home).run_storage_data
    if storage is None or storage.module_name.split(".")[0] not in _SERVER_STORAGE:
        return None
    return f"{Path(home) / 'dagster.yaml'} ({storage.class_name})"

"""`python -m logikal_square_sync.warehouse.migrate`: bring the warehouse's schema to this release's head.

The `init` role of deploy/commands.sh runs it after `dagster instance migrate`, once per deploy,
before the code server and the runs start: in production they never change the schema
themselves (`connections.py`). Safe to run again and from two places at once (Alembic under an
advisory lock). The URL comes from WAREHOUSE_URL, refused unset in production like everywhere.
"""

from __future__ import annotations

import sys

from logikal_square_sync.common.command_line import setting_or_exit
from logikal_square_sync.warehouse.connections import (
    HEAD_REVISION,
    create_warehouse_engine,
    migrate,
    schema_revisions,
)
from logikal_square_sync.warehouse.location import (
    WarehouseNotConfigured,
    describe_warehouse,
    warehouse_url_from_env,
)


def main() -> int:
    url = setting_or_exit(warehouse_url_from_env, WarehouseNotConfigured, "warehouse migration")
    engine = create_warehouse_engine(url)
    try:
        before = schema_revisions(engine)
        migrate(engine)
    finally:
        engine.dispose()
    was = ", ".join(before) if before else "no schema"
    # Never the URL itself: it may carry a password, and init's output lands in container logs.
    print(f"warehouse {describe_warehouse(url)}: schema at revision {HEAD_REVISION} (was: {was})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

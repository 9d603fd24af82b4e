"""The Dagster resource that owns the warehouse engine."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from logikal_square_sync.warehouse.engine import default_warehouse_url, warehouse_engine


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (PostgreSQL in production, SQLite by default).

    The schema is migrated with Alembic before the first write of a process.
    """

    url: str = Field(
        default_factory=default_warehouse_url,
        description="SQLAlchemy URL; set WAREHOUSE_URL. Defaults to a SQLite file in ./.data.",
    )

    @property
    def engine(self) -> sa.Engine:
        return warehouse_engine(self.url)


def warehouse_resource_from_env() -> WarehouseResource:
    if os.environ.get("WAREHOUSE_URL"):
        # The URL may carry a password: it goes through EnvVar so it never shows in run config.
        return WarehouseResource(url=dg.EnvVar("WAREHOUSE_URL"))
    return WarehouseResource()

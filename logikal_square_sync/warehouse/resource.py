"""The Dagster resource that owns the warehouse engine."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync.warehouse.location import check_warehouse_url, default_warehouse_url


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (PostgreSQL in production, SQLite by default).

    Outside production the schema is migrated with Alembic before the first write of a process;
    in production only the `init` role migrates it, and a process finding it behind fails.
    """

    url: str = Field(
        default_factory=default_warehouse_url,
        description=(
            "SQLAlchemy URL; set WAREHOUSE_URL. Defaults to a SQLite file in ./.data, except where "
            "Dagster's storage is PostgreSQL (production): there WAREHOUSE_URL is required."
        ),
    )

    @property
    def engine(self) -> sa.Engine:
        return warehouse_engine(self.url)


def warehouse_resource_from_env() -> WarehouseResource:
    """From WAREHOUSE_URL; fails naming it when it is unset in production (`location.py`)."""
    if check_warehouse_url() is not None:
        # The URL may carry a password: it goes through EnvVar so it never shows in run config.
        return WarehouseResource(url=dg.EnvVar("WAREHOUSE_URL"))
    return WarehouseResource()

"""The LogiKal assets and the project-sync job against a sandbox, for tests that launch real runs."""

from __future__ import annotations

import dagster as dg

from logikal_square_sync.logikal.assets import logikal_directories, logikal_project_contents, logikal_projects
from logikal_square_sync.logikal.jobs import logikal_project_sync
from logikal_square_sync.logikal.resource import LogikalResource
from logikal_square_sync.warehouse.resource import WarehouseResource


def project_sync_definitions(
    logikal_url: str, warehouse_url: str, password: str = "sandbox"
) -> dg.Definitions:
    return dg.Definitions(
        assets=[logikal_directories, logikal_projects, logikal_project_contents],
        jobs=[logikal_project_sync],
        resources={
            "logikal": LogikalResource(
                base_url=logikal_url,
                allow_http=True,  # the sandbox serves plain http
                username="sandbox",
                password=password,
                retry_base_delay_seconds=0.01,
            ),
            "warehouse": WarehouseResource(url=warehouse_url),
        },
    )

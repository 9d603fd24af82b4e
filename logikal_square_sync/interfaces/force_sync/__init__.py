"""Force sync of one LogiKal project through Dagster's run queue: the command and its parts.

`command` is `lss-force-sync`; `graphql` the webserver calls it (and the HTTP API,
logikal_square_sync.interfaces.api) makes; `projects` resolves a GUID or name in the warehouse.
"""

from logikal_square_sync.interfaces.force_sync.command import main, submit, wait
from logikal_square_sync.interfaces.force_sync.graphql import (
    DEFAULT_DAGSTER_URL,
    FINISHED,
    DagsterApi,
    DagsterUnreachable,
    ForceSyncError,
)
from logikal_square_sync.interfaces.force_sync.projects import (
    AmbiguousProject,
    ProjectLookupError,
    ProjectNotInWarehouse,
    ProjectRef,
    describe_warehouse,
    resolve_project,
)

__all__ = [
    "AmbiguousProject",
    "DEFAULT_DAGSTER_URL",
    "FINISHED",
    "DagsterApi",
    "DagsterUnreachable",
    "ForceSyncError",
    "ProjectLookupError",
    "ProjectNotInWarehouse",
    "ProjectRef",
    "describe_warehouse",
    "main",
    "resolve_project",
    "submit",
    "wait",
]

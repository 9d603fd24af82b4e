"""Which LogiKal project a force sync means: by GUID or name, as the warehouse knows it."""

from __future__ import annotations

import difflib
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from logikal_square_sync.interfaces.force_sync.graphql import ForceSyncError
from logikal_square_sync.logikal.engine.store.tree import ProjectRef
from logikal_square_sync.warehouse.tables import logikal_projects


class ProjectLookupError(ForceSyncError):
    exit_code = 2


class ProjectNotInWarehouse(ProjectLookupError):
    """Neither the GUID nor the name is a project the warehouse knows (it may be new at LogiKal)."""


class AmbiguousProject(ProjectLookupError):
    """The name is shared by several live projects: the GUID must say which."""


def describe_warehouse(url: sa.URL | str) -> str:
    """Where a warehouse is, for messages: never its password, user or query (they may hold secrets)."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return f"the SQLite warehouse {url.database}"
    where = f"{url.host or 'localhost'}" + (f":{url.port}" if url.port else "")
    return f"the {url.get_backend_name()} warehouse database {url.database!r} on {where}"


def resolve_project(engine: sa.Engine, text: str) -> ProjectRef:
    """A live project by GUID, exact name, or case-insensitive name; else a clear error."""
    p = logikal_projects.c
    columns = (p.id, p.name, p.directory_path, p.job_number)
    text = text.strip()
    if not text:
        raise ProjectLookupError("no project given: pass --project NAME_OR_GUID")
    with engine.connect() as conn:
        try:
            guid = str(uuid.UUID(text))
        except ValueError:
            guid = None
        if guid is not None:
            row = conn.execute(sa.select(*columns, p.deleted_at).where(p.id == guid)).one_or_none()
            if row is None:
                raise ProjectNotInWarehouse(
                    f"no LogiKal project {guid} in {describe_warehouse(engine.url)}; if it is new, "
                    "materialize logikal/projects first (it runs every 30 minutes)"
                )
            if row.deleted_at is not None:
                raise ProjectLookupError(f"LogiKal project {row.name} ({guid}) was deleted at the source")
            return ProjectRef(*row[:4])
        live = sa.select(*columns).where(p.deleted_at.is_(None))
        rows = conn.execute(live.where(p.name == text)).all()
        if not rows:
            rows = conn.execute(live.where(sa.func.lower(p.name) == text.lower())).all()
        if len(rows) == 1:
            return ProjectRef(*rows[0])
        if len(rows) > 1:
            found = "; ".join(ProjectRef(*row).describe() for row in rows)
            raise AmbiguousProject(
                f"{len(rows)} LogiKal projects are named {text!r}: {found}. Pass the GUID instead."
            )
        names = list(conn.execute(sa.select(p.name).where(p.deleted_at.is_(None))).scalars())
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ProjectNotInWarehouse(
        f"no LogiKal project named {text!r} in {describe_warehouse(engine.url)}.{hint} A project created "
        "in LogiKal in the last half hour appears after the next logikal/projects run; a wrong warehouse "
        "means WAREHOUSE_URL is not the one the code location uses."
    )

"""The endpoints (docs/api.md): force sync, a run's outcome, data freshness, health."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from logikal_square_sync.common.clock import utc_now
from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.interfaces.api.dagster_client import ApiDagster, RunNotFound, RunView
from logikal_square_sync.interfaces.api.guards import problem
from logikal_square_sync.interfaces.api.new_projects import (
    LogikalNotConfigured,
    add_to_warehouse,
    connection_settings,
    find_at_logikal,
)
from logikal_square_sync.interfaces.force_sync import (
    AmbiguousProject,
    DagsterUnreachable,
    ForceSyncError,
    ProjectLookupError,
    ProjectNotInWarehouse,
    ProjectRef,
    resolve_project,
)
from logikal_square_sync.logikal.engine.client.errors import LogikalError
from logikal_square_sync.logikal.engine.store.contents import unfetched_elevations
from logikal_square_sync.logikal.engine.syncs.project_selection import (
    load_project_states,
    staleness,
)
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync.warehouse.location import warehouse_url_from_env
from logikal_square_sync.warehouse.tables import logikal_projects

log = logging.getLogger("logikal_square_sync.interfaces.api")

MAX_WAIT = 300
DEFAULT_WAIT = 60
RUNS_PATH = "/api/v1/sync/runs"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def _wait_seconds(request: Request) -> int:
    text = request.query_params.get("wait")
    if text is None:
        return DEFAULT_WAIT
    if not text.isdigit() or int(text) > MAX_WAIT:
        raise ApiError(422, f"wait={text!r}: expected whole seconds from 0 to {MAX_WAIT}")
    return int(text)


def resolve(text: str) -> tuple[ProjectRef, bool]:
    """(project, new): from the warehouse, else looked up at LogiKal and added to the warehouse."""
    engine = warehouse_engine(warehouse_url_from_env())
    try:
        return resolve_project(engine, text), False
    except ProjectNotInWarehouse:
        pass
    except AmbiguousProject as error:
        raise ApiError(409, str(error)) from None
    except ProjectLookupError as error:  # deleted at the source
        raise ApiError(404, str(error)) from None
    try:
        found = find_at_logikal(connection_settings(), text)
    except LogikalNotConfigured as error:
        raise ApiError(404, f"no LogiKal project {text!r} in the warehouse, and {error}") from None
    except (LogikalError, MalformedRecordError) as error:
        raise ApiError(
            503, f"no LogiKal project {text!r} in the warehouse, and LogiKal could not be searched: {error}"
        ) from None
    if not found:
        raise ApiError(404, f"no LogiKal project {text!r}: neither in the warehouse nor at LogiKal")
    if len(found) > 1:
        where = "; ".join(f"{f.record.name} ({f.record.id}) in '{f.directory_path}'" for f in found)
        raise ApiError(409, f"{len(found)} LogiKal projects match {text!r}: {where}. Pass the GUID instead.")
    return add_to_warehouse(engine, found[0]), True


def _project_name(project_id: str | None) -> str | None:
    if project_id is None:
        return None
    engine = warehouse_engine(warehouse_url_from_env())
    with engine.connect() as conn:
        return conn.execute(
            sa.select(logikal_projects.c.name).where(logikal_projects.c.id == project_id)
        ).scalar_one_or_none()


def run_answer(dagster: ApiDagster, view: RunView, name: str | None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {
        "status": view.status,
        "run_id": view.run_id,
        "run_url": dagster.run_url(view.run_id),
        "project": {"id": view.project_id, "name": name},
    }
    if not view.finished:
        return 202, {**body, "status_url": f"{RUNS_PATH}/{view.run_id}"}
    return 200, {
        **body,
        "duration_s": view.duration_s,
        "rows": view.rows,
        "errors": view.errors,
        "dagster_status": view.dagster_status,
    }


class Endpoints:
    def __init__(self, dagster: ApiDagster) -> None:
        self.dagster = dagster

    async def _answer(self, work: Any, *args: Any) -> Response:
        try:
            status, body = await run_in_threadpool(work, *args)
        except ApiError as error:
            return problem(error.status, error.message)
        except RunNotFound as error:
            return problem(404, f"no force-sync run {error}")
        except DagsterUnreachable as error:
            # The message names the webserver's address: logged here, not answered.
            log.warning("Dagster webserver unreachable: %s", error)
            return problem(503, "Dagster cannot be reached; try again later")
        except ForceSyncError as error:
            log.warning("Dagster refused: %s", error)
            return problem(502, f"Dagster refused: {error}")
        except sa.exc.OperationalError as error:
            # The driver's message names host and port, never the password; logged, not answered.
            log.warning("warehouse unreachable: %s", error.orig)
            return problem(503, "the warehouse cannot be reached; try again later")
        return JSONResponse(body, status_code=status)

    async def force_sync(self, request: Request) -> Response:
        project_id = request.path_params.get("project_id")
        name = request.query_params.get("name")
        if project_id and name:
            return problem(422, "give the project's GUID in the path or ?name=, not both")
        if not project_id and not name:
            return problem(422, "no project: POST /api/v1/sync/force-sync/{project_id} or ?name=")
        try:
            wait = _wait_seconds(request)
        except ApiError as error:
            return problem(error.status, error.message)
        return await self._answer(self._force_sync, project_id or name, wait)

    def _force_sync(self, text: str, wait: int) -> tuple[int, dict[str, Any]]:
        project, new = resolve(text)
        run_id, launched = self.dagster.force_sync(project)
        log.info(
            "force sync of LogiKal project %s (%s): %s run %s",
            project.name,
            project.id,
            "launched" if launched else "joined queued/running",
            run_id,
        )
        self.dagster.wait(run_id, wait)
        status, body = run_answer(self.dagster, self.dagster.run(run_id), project.name)
        return status, {**body, "new": new}

    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            uuid.UUID(run_id)
        except ValueError:
            return problem(404, f"no force-sync run {run_id!r}")

        def work() -> tuple[int, dict[str, Any]]:
            view = self.dagster.run(run_id)
            return run_answer(self.dagster, view, _project_name(view.project_id))

        return await self._answer(work)

    async def status(self, request: Request) -> Response:
        project_id = request.query_params.get("project_id")

        def work() -> tuple[int, dict[str, Any]]:
            if project_id is not None:
                return project_freshness(project_id)
            assets = self.dagster.asset_status()
            for asset in assets:
                asset["last_successful_sync"] = _iso(asset["last_successful_sync"])
                asset["next_scheduled_run"] = _iso(asset["next_scheduled_run"])
            return 200, {"assets": assets}

        return await self._answer(work)

    async def health(self, request: Request) -> Response:
        try:
            parts = await run_in_threadpool(self.dagster.health)
        except DagsterUnreachable as error:
            log.warning("health: Dagster unreachable: %s", error)
            parts = {"dagster": "Dagster cannot be reached"}
        except ForceSyncError as error:
            # The webserver answered, but not the query: most often its storage is down.
            log.warning("health: Dagster's GraphQL failed: %s", error)
            parts = {"dagster": "ok", "storage": "Dagster could not answer from its storage"}
        healthy = all(state == "ok" for state in parts.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unhealthy", "checks": parts}, 200 if healthy else 503
        )


def project_freshness(project_id: str) -> tuple[int, dict[str, Any]]:
    """One project's contents freshness, as the check `project_contents_fresh` judges it."""
    engine = warehouse_engine(warehouse_url_from_env())
    with engine.connect() as conn:
        states = [s for s in load_project_states(conn) if s.id == project_id]
        if not states:
            raise ApiError(404, f"no live LogiKal project {project_id!r} in the warehouse")
        state = states[0]
        report = staleness(states, utc_now(), policies().logikal.project_sync)
        unfetched = unfetched_elevations(conn, [project_id])
    # In the words of Dagster's freshness states (the per-asset ones of /api/v1/sync/status).
    level = "DEGRADED" if report.fail else "WARNING" if report.warn else "HEALTHY"
    return 200, {
        "project": {"id": state.id, "name": state.name},
        "freshness": level,
        "contents_synced_at": state.contents_synced_at.isoformat() if state.contents_synced_at else None,
        "failures_in_a_row": state.failures,
        "unfetched_parts_lists": [
            {"elevation_id": u.id, "elevation": u.name, "reason": u.reason} for u in unfetched
        ],
    }

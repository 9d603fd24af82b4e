"""Which warehouse this process writes to: WAREHOUSE_URL, or the SQLite default outside production.

The SQLite default serves `dagster dev`, the demo and the tests. In production (Dagster's storage
on PostgreSQL, `production.py`) it would be a file inside a container: every sync, freshness
check and completeness check would pass against it while the warehouse the ERP reads stays
empty. So there an unset WAREHOUSE_URL fails the definitions' load, naming the variable.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

import sqlalchemy as sa

from logikal_square_sync.common.production import production_storage

WAREHOUSE_URL = "WAREHOUSE_URL"
# Variables of ours whose names resemble WAREHOUSE_URL on purpose.
_NOT_A_TYPO = {"LSS_WAREHOUSE_DB"}

log = logging.getLogger(__name__)


def default_data_dir() -> Path:
    return Path(os.environ.get("LSS_DATA_DIR", ".data"))


def default_warehouse_url() -> str:
    """The embedded default: a SQLite file in the local data folder (made on first connect, not here)."""
    return f"sqlite:///{(default_data_dir() / 'warehouse.sqlite').resolve()}"


class WarehouseNotConfigured(ValueError):
    """WAREHOUSE_URL is unset where the SQLite default is refused."""


def configured_warehouse_url() -> str | None:
    """WAREHOUSE_URL as set; empty (as a blank line of .env leaves it) counts as unset."""
    return os.environ.get("WAREHOUSE_URL", "").strip() or None


def near_misses() -> list[str]:
    """Set variables whose names look like a misspelt WAREHOUSE_URL (WAREHOUSE_URI, warehouse_url, ...)."""
    names = {name.upper(): name for name in os.environ if name != WAREHOUSE_URL and name not in _NOT_A_TYPO}
    return [names[close] for close in difflib.get_close_matches(WAREHOUSE_URL, names, n=3, cutoff=0.8)]


def check_warehouse_url() -> str | None:
    """WAREHOUSE_URL, or None for the SQLite default; refuses the default in production.

    Outside production a look-alike variable (WAREHOUSE_URI, ...) only logs a warning: the
    default is legitimate there, and the warning says which file is written instead.
    """
    url = configured_warehouse_url()
    if url is not None:
        return url
    misspelt = near_misses()
    hint = f" {', '.join(misspelt)} is set: did you mean {WAREHOUSE_URL}?" if misspelt else ""
    storage = production_storage()
    if storage is not None:
        raise WarehouseNotConfigured(
            f"{WAREHOUSE_URL} is not set, and Dagster's storage is a database server ({storage}): "
            "production syncs would write to a SQLite file inside the container, not to the "
            f"warehouse. Set {WAREHOUSE_URL} (e.g. postgresql://user:password@host:5432/"
            f"warehouse) for every process of the deployment.{hint}"
        )
    if misspelt:
        log.warning("%s is not set, so the warehouse is %s.%s", WAREHOUSE_URL, default_warehouse_url(), hint)
    return None


def warehouse_url_from_env() -> str:
    """The URL to connect to: WAREHOUSE_URL, or the SQLite default where that is allowed."""
    return check_warehouse_url() or default_warehouse_url()


def describe_warehouse(url: str | sa.URL) -> str:
    """The warehouse's kind, host, port and database, never its user, password or query options.

    E.g. `postgresql://db.internal:5432/warehouse` or `sqlite:////opt/dagster/data/warehouse.sqlite`.
    The query is dropped whole: libpq accepts `?password=...` there too.
    """
    parsed = sa.make_url(url)
    bare = sa.URL.create(
        parsed.get_backend_name(), host=parsed.host, port=parsed.port, database=parsed.database
    )
    return bare.render_as_string(hide_password=True)

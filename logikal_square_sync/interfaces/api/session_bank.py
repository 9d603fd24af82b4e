"""The LogiKal session bank in the API's process: kept warm while the API runs.

The API is one long-running process (one replica) that sees LogiKal, the warehouse and
Dagster's instance, which is what the bank needs (`logikal/session_bank.py`). Without any
of them (no LOGIKAL_* or DAGSTER_HOME, `logikal.sessions.bank.size` 0) there is no bank,
and force syncs log in as they would anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import dagster as dg

from logikal_square_sync.interfaces.api.new_projects import LogikalNotConfigured, connection_settings
from logikal_square_sync.logikal.session_bank import BankKeeper
from logikal_square_sync.policies import policies
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync.warehouse.location import warehouse_url_from_env

log = logging.getLogger(__name__)


@contextlib.contextmanager
def session_bank() -> Iterator[None]:
    """Keep the bank while the block runs; log its tokens out at the end."""
    if policies().logikal.sessions.bank.size == 0 or not os.environ.get("DAGSTER_HOME"):
        yield
        return
    try:
        settings = connection_settings()
    except LogikalNotConfigured:
        yield
        return
    with dg.DagsterInstance.get() as instance:
        if not instance.event_log_storage.supports_global_concurrency_limits:
            yield
            return
        try:
            engine = warehouse_engine(warehouse_url_from_env())
        except Exception as error:  # noqa: BLE001 - the API serves without a bank; force syncs log in
            log.warning(f"LogiKal session bank not started: the warehouse is not usable: {error}")
            yield
            return
        keeper = BankKeeper(settings, engine, instance)
        keeper.start()
        log.info("LogiKal session bank started")
        try:
            yield
        finally:
            keeper.stop()

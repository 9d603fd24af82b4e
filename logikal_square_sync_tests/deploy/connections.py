"""Connection attempts the deploy tests expect PostgreSQL to refuse."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from logikal_square_sync.warehouse.connections import create_warehouse_engine


def refusal(url: str) -> str:
    """PostgreSQL's reason for refusing a connection to `url`; fails the test if it connects."""
    engine = create_warehouse_engine(url)
    try:
        with pytest.raises(sa.exc.OperationalError) as refused, engine.connect():
            pass
    finally:
        engine.dispose()
    return str(refused.value.orig)

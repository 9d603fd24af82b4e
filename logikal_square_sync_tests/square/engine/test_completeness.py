"""The completeness check at the moments where day arithmetic goes wrong, in UTC and in Europe/Berlin.

Each case pins the clock, syncs a sandbox whose history ends at that moment,
deletes the orders nearest to a day boundary (the earliest of the newest
order day, the latest of the day before) and expects the check to name
exactly those days, as the product defines an order's day, and the backfill
it proposes to bring them back.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from logikal_square_sync.policies import policies
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync.square.engine.completeness import compare_recent_orders
from logikal_square_sync.square.engine.location_sync import sync_locations
from logikal_square_sync.square.engine.order_days import OrderDays, order_day
from logikal_square_sync.square.engine.order_sync import HistoryRefetch, sync_orders
from logikal_square_sync.warehouse import tables as t
from logikal_square_sync.warehouse.connections import warehouse_engine
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig, create_app
from logikal_square_sync_tests.clock import TIMEZONES, awkward_moments
from logikal_square_sync_tests.square.helpers import ts, warehouse_orders

WINDOW_DAYS = 7


def _boundary_orders(sandbox: SquareSandbox, zone: ZoneInfo, last_day: date) -> dict[date, str]:
    """The earliest order of the newest order day and the latest of the day before it."""
    created = {o["id"]: ts(o["created_at"]) for o in sandbox.iter_orders()}
    by_day: dict[date, list[tuple[datetime, str]]] = {}
    for order_id, at in created.items():
        day = order_day(at, zone)
        if day <= last_day:
            by_day.setdefault(day, []).append((at, order_id))
    newest, before = sorted(by_day)[-2:][::-1]
    return {newest: min(by_day[newest])[1], before: max(by_day[before])[1]}


@pytest.mark.parametrize("zone_name", TIMEZONES)
@pytest.mark.parametrize("moment", awkward_moments())
def test_missing_orders_are_named_by_their_day_at_any_moment(
    pinned_clock: time_machine.Traveller, tmp_path, moment: datetime, zone_name: str
) -> None:
    pinned_clock.move_to(moment)
    zone = ZoneInfo(zone_name)
    sandbox = SquareSandbox(SquareSandboxConfig(seed=11, locations=3, orders=400, history_days=9))
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    policy = policies().square.orders.model_copy(update={"page_size": 100})
    with serve_in_thread(create_app(sandbox)) as served:

        def client() -> SquareClient:
            return SquareClient(served.url, sandbox.config.access_token)

        with client() as square:
            sync_locations(square, engine)
        with client() as square:
            sync_orders(square, engine, policy)
        last_day = order_day(moment, zone)
        lost = _boundary_orders(sandbox, zone, last_day)
        with engine.begin() as conn:
            conn.execute(t.square_orders.delete().where(t.square_orders.c.id.in_(list(lost.values()))))

        with client() as square:
            result = compare_recent_orders(square, engine, window_days=WINDOW_DAYS, zone=zone)
        assert not result.passed
        assert result.days[-1].day == last_day and len(result.days) == WINDOW_DAYS
        assert {day.day: day.missing for day in result.days if day.missing} == {
            day: [order_id] for day, order_id in lost.items()
        }
        for day, order_id in lost.items():
            assert f"{day}: 1 of" in result.description() and order_id in result.description()

        config = result.backfill_config()
        assert config is not None
        days = config["ops"]["refetch_square_orders"]["config"]
        assert (days["start"], days["end"], days["by"]) == (str(min(lost)), str(max(lost)), "created_at")
        history = HistoryRefetch(OrderDays.parse(days["start"], days["end"], zone))
        with client() as square:
            assert sync_orders(square, engine, policy, history=history).inserted == len(lost)
        with client() as square:
            assert compare_recent_orders(square, engine, window_days=WINDOW_DAYS, zone=zone).passed
    assert set(warehouse_orders(engine)) == {o["id"] for o in sandbox.iter_orders()}

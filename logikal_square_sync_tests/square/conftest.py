"""The Square sandbox served over real HTTP, and clients of it.

The `sandbox` fixture takes config overrides as an indirect parameter, so a
test runs against each answer the sandbox can give where Square's behaviour
is undocumented (`helpers.MODES`, `helpers.every_mode`). A test that asks for
`clocks` gets a sandbox on a `ManualClock` that moves together with the
process clock. What the tests share besides fixtures is in `helpers.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import time_machine

from logikal_square_sync.common.http import RetryPolicy
from logikal_square_sync.square.engine.client import SquareClient
from logikal_square_sync_sandbox.clock import ManualClock
from logikal_square_sync_sandbox.server import serve_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, create_app
from logikal_square_sync_tests.clock import ANCHOR
from logikal_square_sync_tests.square.helpers import SMALL, Clocks, MakeClient


@pytest.fixture
def clocks(pinned_clock: time_machine.Traveller) -> Clocks:
    return Clocks(ManualClock(ANCHOR), pinned_clock)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SquareSandbox]:
    overrides = getattr(request, "param", {})
    clock = request.getfixturevalue("clocks").sandbox if "clocks" in request.fixturenames else None
    sandbox = SquareSandbox(dataclasses.replace(SMALL, **overrides), clock=clock)
    yield sandbox
    sandbox.hooks.clear()
    sandbox.faults.clear()  # lets any held request answer, so the server stops at once


@pytest.fixture
def square_url(sandbox: SquareSandbox) -> Iterator[str]:
    with serve_in_thread(create_app(sandbox)) as served:
        yield served.url


@pytest.fixture
def make_client(square_url: str, sandbox: SquareSandbox) -> MakeClient:
    def make(timeout: float = 2.0) -> SquareClient:
        return SquareClient(
            square_url,
            sandbox.config.access_token,
            retry=RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05),
            timeout=timeout,
        )

    return make

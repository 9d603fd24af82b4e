"""The production topology (see `topology.py`), started once per test module.

Under CI=true an unreachable PostgreSQL fails the tests; elsewhere they are skipped with the
reason, like `postgres_database`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logikal_square_sync_tests.deploy.topology import Topology, running_topology


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with running_topology(tmp_path_factory.mktemp("topology")) as running:
        yield running

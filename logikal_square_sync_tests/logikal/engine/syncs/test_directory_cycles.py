"""The directory walk is a walk of a tree, whatever the listings say.

A listing that names the listed directory itself, an ancestor, or a path
listed elsewhere would send a naive walk round until the run's max runtime.
The walk leaves such an entry out, names it in a malformed-record error, and
syncs the rest of the tree exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from logikal_square_sync.common.records import MalformedRecordError
from logikal_square_sync.logikal.engine.syncs.directory_sync import DirectorySyncResult, sync_directories
from logikal_square_sync_tests.logikal.sandbox_runs import sync_everything
from logikal_square_sync_tests.logikal.source_truth import (
    NOTHING_DELETED,
    assert_warehouse_equals_source,
    marked_deleted,
    source_truth,
    warehouse_state,
)

T = TypeVar("T")

# A walk that loops would never return: give it far more than the few listings it needs.
WALK_LIMIT_SECONDS = 60.0


def within_limit(run: Callable[[], T]) -> T:
    """`run()`'s result, failing the test (instead of hanging it) if it has not ended in time."""
    outcome: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(run())
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(WALK_LIMIT_SECONDS)
    assert not thread.is_alive(), f"the directory walk had not ended after {WALK_LIMIT_SECONDS:.0f} s"
    if errors:
        raise errors[0]
    return outcome[0]


def _the_only_problem(result: DirectorySyncResult) -> MalformedRecordError:
    (error,) = result.malformed
    assert isinstance(error, MalformedRecordError)
    assert error.source == "LogiKal" and error.kind == "directory" and error.field == "path"
    return error


@pytest.mark.parametrize(
    ("sandbox", "problem"),
    [
        ({"directory_cycle": "self"}, "names the listed directory itself"),
        ({"directory_cycle": "ancestor"}, "an ancestor of the listed directory"),
    ],
    indirect=["sandbox"],
    ids=["self", "ancestor"],
)
def test_a_listing_that_makes_a_cycle_is_named_and_the_rest_of_the_tree_syncs(
    logikal, engine, sandbox, problem: str
) -> None:
    root = sandbox.directories()[0]["path"]
    deepest = next(d["path"] for d in sandbox.directories() if d["path"].startswith(f"{root}/"))
    named = deepest if sandbox.config.directory_cycle == "self" else root

    with logikal.pool() as pool:
        result = within_limit(lambda: sync_directories(pool, engine))

    error = _the_only_problem(result)
    assert error.record_id == named and error.call == f"GET /directories (directory '{deepest}')"
    assert problem in str(error) and f"'{named}'" in str(error) and "cycle" in str(error)
    assert warehouse_state(engine)["directories"] == source_truth(sandbox)["directories"]
    # Each directory was listed once: the cycle sent nobody round again.
    assert sandbox.stats.calls["GET /directories"] == len(sandbox.directories()) + 1

    # The projects and their contents below the malformed listing sync as usual.
    full = within_limit(lambda: sync_everything(logikal, engine))
    assert len(full.directories.malformed) == 1
    assert_warehouse_equals_source(engine, sandbox)
    assert marked_deleted(engine) == NOTHING_DELETED


def test_a_path_listed_twice_is_named_and_kept_where_it_was_listed_first(logikal, engine, sandbox) -> None:
    root = sandbox.directories()[0]["path"]
    first, second = (d["path"] for d in sandbox.directories() if d["path"].count("/") == 1)
    # The second sub-directory's listing names its sibling, and the roots are listed with a repeat.
    sandbox.list_in_directory(second, first)
    sandbox.list_in_directory(None, root)

    with logikal.pool() as pool:
        result = within_limit(lambda: sync_directories(pool, engine))

    problems = {error.record_id: str(error) for error in result.malformed}
    assert set(problems) == {first, root}
    assert f"GET /directories (directory '{second}')" in problems[first]
    assert f"was listed already, in directory '{root}'" in problems[first]
    assert "GET /directories (the roots)" in problems[root] and "in the roots" in problems[root]
    assert warehouse_state(engine)["directories"] == source_truth(sandbox)["directories"]

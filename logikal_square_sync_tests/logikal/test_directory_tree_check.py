"""A directory listing that is not a tree: the asset materializes, its check fails naming the path."""

from __future__ import annotations

import dagster as dg
import pytest

from logikal_square_sync.logikal.assets import DIRECTORIES_KEY, logikal_directories
from logikal_square_sync.logikal.directory_tree_check import CHECK_NAME
from logikal_square_sync_tests.logikal.source_truth import source_truth, warehouse_state


def _materialize_directories(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, asset_selection=[logikal_directories.key])


def _tree_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    assert evaluation.asset_key == DIRECTORIES_KEY
    return evaluation


@pytest.mark.parametrize("sandbox", [{"directory_cycle": "ancestor"}], indirect=True)
def test_a_cycle_fails_the_check_naming_the_path_and_the_tree_is_synced(
    defs, instance, engine, sandbox
) -> None:
    root = sandbox.directories()[0]["path"]

    result = _materialize_directories(defs, instance)

    assert result.success
    (materialization,) = result.asset_materializations_for_node("logikal__directories")
    assert materialization.metadata["listing_entries_left_out"].value == 1
    check = _tree_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description is not None
    assert f"'{root}'" in check.description and "not a tree" in check.description
    left_out = check.metadata["left_out"]
    assert isinstance(left_out, dg.MarkdownMetadataValue)
    assert "an ancestor of the listed directory" in left_out.value
    assert warehouse_state(engine)["directories"] == source_truth(sandbox)["directories"]


def test_a_tree_passes_the_check(defs, instance, sandbox) -> None:
    result = _materialize_directories(defs, instance)
    check = _tree_check(result)
    assert check.passed and check.metadata["listing_entries_left_out"].value == 0

"""Code references on the asset pages: the file and line defining each asset.

Locally (and in `dagster dev`) they open the file on this machine. With `LSS_SOURCE_URL` set
to the repository's web address (GitHub or GitLab) they link to the file at `LSS_SOURCE_BRANCH`
(default `main`) there instead: production images have no checkout to open.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

PACKAGE = Path(__file__).parents[1]


def with_code_references(assets: Sequence[dg.AssetsDefinition]) -> Sequence:
    referenced = dg.with_source_code_references(assets)
    url = os.environ.get("LSS_SOURCE_URL", "").strip()
    if not url:
        return referenced
    return dg.link_code_references_to_git(
        referenced,
        git_url=url,
        git_branch=os.environ.get("LSS_SOURCE_BRANCH", "").strip() or "main",
        file_path_mapping=dg.AnchorBasedFilePathMapping(
            local_file_anchor=PACKAGE / "__init__.py",
            file_anchor_path_in_repository="logikal_square_sync/__init__.py",
        ),
    )

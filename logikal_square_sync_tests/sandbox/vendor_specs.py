"""Where the conformance tests find the vendors' API specs, and what happens when they cannot.

The specs are not part of this repository (Square's is 3 MB, LogiKal's is the
vendor's). They are found through an environment variable or in
`../shared/specs/` beside the checkout (how CI lays it out). Without one,
only the tests whose point is conformance skip, saying where to get it; under
CI (`CI=true`) a missing spec fails them, so conformance is never silently lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from logikal_square_sync_tests.ci import under_ci

_REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class VendorSpec:
    env_var: str
    file_name: str
    source: str

    def path(self) -> Path | None:
        override = os.environ.get(self.env_var)
        candidates = [Path(override)] if override else []
        candidates.append(_REPOSITORY.parent / "shared" / "specs" / self.file_name)
        return next((path for path in candidates if path.is_file()), None)

    def require(self) -> Path:
        """The spec's path; skips the calling test without it (fails it under CI)."""
        path = self.path()
        if path is not None:
            return path
        message = (
            f"{self.file_name} not found: set {self.env_var} to its path or put it in "
            f"../shared/specs/ beside the repository. Get it from {self.source}."
        )
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)


SQUARE = VendorSpec(
    "SQUARE_OPENAPI_SPEC",
    "square-connect-v2.openapi.json",
    "github.com/square/connect-api-specification (api.json, release 2025-08-20)",
)
LOGIKAL = VendorSpec(
    "LOGIKAL_SWAGGER_SPEC",
    "logikal-mbioe-v3.swagger.json",
    "your LogiKal MBIOE server's Swagger document (MBIOE Service 12.2.6.59, basePath /api/v3), "
    "or Orgadata's ERP interface documentation",
)

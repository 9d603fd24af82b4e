"""Whether the tests run under CI, where a missing service fails a test instead of skipping it."""

import os


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}

"""Marks that choose where a parametrized test runs (the root conftest applies them)."""

import pytest

# The sandboxes' modes change what the APIs answer; the warehouse changes how rows are written.
# The two are independent, so a test in every mode runs them all on SQLite and only the first
# (the documented behaviour) on PostgreSQL too: `pytest.param(..., marks=SQLITE_ONLY)`.
SQLITE_ONLY = pytest.mark.sqlite_only

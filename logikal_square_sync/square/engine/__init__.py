"""The Square engine: client, one sync module per object, the incremental sync the catalog and the
inventory share, row mappers, decode pipeline and the warehouse store; never imports dagster.

The Dagster-facing modules one level up (assets, checks, backfill job, ...) call into it;
it never calls back into them (test_imports.py holds both rules).
"""

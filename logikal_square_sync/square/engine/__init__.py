"""The Square engine: client, one sync module per object, row mappers, decode pipeline; never imports dagster.

The Dagster-facing modules one level up (assets, checks, backfill job, ...) call into it;
it never calls back into them (test_imports.py holds both rules).
"""

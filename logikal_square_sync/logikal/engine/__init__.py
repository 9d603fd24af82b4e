"""The LogiKal engine: client, session rules, pool and planner, syncs, warehouse store; never imports dagster.

The Dagster-facing modules one level up (assets, checks, jobs, sensors, ...) call into it;
it never calls back into them (test_imports.py holds both rules).
"""

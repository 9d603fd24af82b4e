"""Housekeeping of Dagster's own storage: purging old runs, their event logs and compute logs."""

"""Dagster-free building blocks every source shares: records, sync reports, HTTP, the clock, memory."""

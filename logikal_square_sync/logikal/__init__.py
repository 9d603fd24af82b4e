"""Orgadata LogiKal: session-aware MBIOE v3 client, session pool and planner, sync, Dagster assets."""

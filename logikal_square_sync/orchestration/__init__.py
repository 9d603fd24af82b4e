"""The Dagster pieces every source shares: freshness policies, report metadata, checks, switches."""

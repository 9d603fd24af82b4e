"""Failure and staleness alerts by Slack and e-mail (open-source stand-in for Dagster+ alerts)."""

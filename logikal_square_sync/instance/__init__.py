"""Classes that the Dagster instance (dagster.yaml) names: every Dagster process imports them."""

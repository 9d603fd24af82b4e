"""Ways into the system besides the Dagster UI: the HTTP API for the ERP and the force-sync command."""

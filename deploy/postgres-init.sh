#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d):
# the warehouse gets a database of its own beside Dagster's storage ($POSTGRES_DB).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${LSS_WAREHOUSE_DB:-warehouse}\" OWNER \"$POSTGRES_USER\""

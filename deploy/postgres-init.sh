#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d): the
# warehouse gets a database of its own beside Dagster's storage ($POSTGRES_DB), owned by a role
# of its own ($LSS_WAREHOUSE_USER, not the superuser that holds Dagster's storage), made by
# deploy/postgres-roles.sql, which compose mounts at $LSS_ROLES_SQL (it reads the role's password
# from LSS_WAREHOUSE_PASSWORD itself, so it is on no command line).
set -euo pipefail
: "${LSS_WAREHOUSE_PASSWORD:?LSS_WAREHOUSE_PASSWORD must be set: the password of the warehouse role}"
psql -X --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -f "${LSS_ROLES_SQL:-$(dirname "${BASH_SOURCE[0]}")/postgres-roles.sql}" \
  -v warehouse_role="${LSS_WAREHOUSE_USER:-lss_warehouse}" \
  -v warehouse_db="${LSS_WAREHOUSE_DB:-warehouse}"

#!/usr/bin/env bash
# The production processes, defined once. The image's ENTRYPOINT is this script, compose.yaml
# names the role of each service, and logikal_square_sync_tests/deploy/test_topology.py runs
# the very same roles as processes on one machine (it reads them from compose.yaml).
#
#   deploy/commands.sh init          create / migrate Dagster's storage and the warehouse's schema
#                                    (WAREHOUSE_URL), then exit (run once per deploy, before the rest)
#   deploy/commands.sh code-server   the code location, in its own gRPC server
#   deploy/commands.sh webserver     the UI and GraphQL API, loading the code server's definitions
#   deploy/commands.sh daemon        schedules, sensors, the run queue and run monitoring
#   deploy/commands.sh api           the ERP's HTTP API (force sync, freshness; docs/api.md) on
#                                    LSS_API_HOST:LSS_API_PORT, talking to DAGSTER_WEBSERVER_URL
#   deploy/commands.sh healthcheck [ROLE]   exit 0 if ROLE (default: this container's) is healthy
#   deploy/commands.sh COMMAND ...   any other command, as given (Kubernetes run pods, one-off CLI calls)
#
# Configuration comes from the environment only (.env.example lists every variable). Every
# process reads $DAGSTER_HOME/dagster.yaml (the repository's dagster.yaml, PostgreSQL storage).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="${DAGSTER_WORKSPACE:-$here/../workspace.yaml}"
role_file="${LSS_ROLE_FILE:-${TMPDIR:-/tmp}/lss-role}"
location=logikal_square_sync

: "${DAGSTER_HOME:?DAGSTER_HOME must name the folder holding dagster.yaml}"
export DAGSTER_CODE_SERVER_HOST="${DAGSTER_CODE_SERVER_HOST:-127.0.0.1}"
export DAGSTER_CODE_SERVER_PORT="${DAGSTER_CODE_SERVER_PORT:-4000}"
# Loopback unless told otherwise: the UI and GraphQL launch runs and have no login of their own.
webserver_host="${DAGSTER_WEBSERVER_HOST:-127.0.0.1}"
webserver_port="${DAGSTER_WEBSERVER_PORT:-3000}"
code_server_bind="${DAGSTER_CODE_SERVER_BIND:-127.0.0.1}"

role="${1:-}"
[ $# -gt 0 ] && shift
case "$role" in
  init)
    dagster instance migrate
    # The warehouse's Alembic migrations: in production nothing else changes its schema, and a
    # run or sensor finding it behind fails, saying to run this role.
    exec python -m logikal_square_sync.warehouse.migrate
    ;;
  code-server)
    echo code-server >"$role_file"
    exec dagster code-server start \
      --host "$code_server_bind" --port "$DAGSTER_CODE_SERVER_PORT" \
      --module-name logikal_square_sync.definitions --location-name "$location" "$@"
    ;;
  webserver)
    echo webserver >"$role_file"
    exec dagster-webserver --host "$webserver_host" --port "$webserver_port" \
      --workspace "$workspace" --path-prefix "${DAGSTER_WEBSERVER_PATH_PREFIX:-}" "$@"
    ;;
  daemon)
    echo daemon >"$role_file"
    exec dagster-daemon run --workspace "$workspace" "$@"
    ;;
  api)
    echo api >"$role_file"
    exec python -m logikal_square_sync.interfaces.api "$@"
    ;;
  healthcheck)
    check="${1:-$(cat "$role_file" 2>/dev/null || true)}"
    case "$check" in
      code-server)
        exec dagster api grpc-health-check --host 127.0.0.1 --port "$DAGSTER_CODE_SERVER_PORT" ;;
      webserver)
        exec python -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5)' \
          "http://127.0.0.1:$webserver_port${DAGSTER_WEBSERVER_PATH_PREFIX:-}/server_info" ;;
      daemon)
        exec dagster-daemon liveness-check ;;
      api)
        # Only that the API answers: its /api/v1/health reports Dagster's state, which must
        # not restart the API (Dagster down is answered 503, not a dead container).
        exec python -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5)' \
          "http://127.0.0.1:${LSS_API_PORT:-8080}/api/v1/openapi.json" ;;
      *)
        echo "healthcheck: unknown role '$check'" >&2; exit 1 ;;
    esac
    ;;
  "")
    echo "usage: $0 init|code-server|webserver|daemon|api|healthcheck [ROLE] | COMMAND [ARG...]" >&2
    exit 64
    ;;
  *)
    # Any other command runs as given, e.g. the run pods the Helm chart's K8sRunLauncher starts
    # (`dagster api execute_run ...`) or `docker compose exec webserver dagster job launch ...`.
    if command -v "$role" >/dev/null 2>&1; then
      exec "$role" "$@"
    fi
    echo "unknown role or command '$role'; roles: init code-server webserver daemon api healthcheck" >&2
    exit 64
    ;;
esac

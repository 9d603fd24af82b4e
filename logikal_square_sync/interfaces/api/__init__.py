"""The ERP's HTTP API: force sync of one LogiKal project, run status, data freshness, health.

`python -m logikal_square_sync.interfaces.api` (the `api` role of deploy/commands.sh) serves it with
uvicorn; docs/api.md is the manual. It talks to Dagster only through the webserver's GraphQL
(DAGSTER_WEBSERVER_URL), with the calls `lss-force-sync` makes, so it launches nothing that
command could not: job `logikal_project_sync` for one project partition.
"""

# One image for the Dagster webserver, the daemon and the run workers.
#   docker build -t logikal-square-sync .
#   docker run -p 3000:3000 --env-file .env logikal-square-sync                       # webserver
#   docker run --env-file .env logikal-square-sync dagster-daemon run -w workspace.yaml  # daemon
# Point DAGSTER_HOME's dagster.yaml at PostgreSQL storage for more than one container
# (README, "Running in production").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    LSS_DATA_DIR=/opt/dagster/data

WORKDIR /opt/dagster/app
COPY pyproject.toml README.md ./
COPY logikal_square_sync ./logikal_square_sync
RUN pip install --no-cache-dir . \
    && mkdir -p "$DAGSTER_HOME" "$LSS_DATA_DIR"
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY workspace.yaml ./

EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]

# One image for every process of the production topology; its entrypoint is deploy/commands.sh
# and the argument picks the role (compose.yaml runs each as a service):
#   docker build -t logikal-square-sync .
#   docker run --env-file .env logikal-square-sync code-server   # also: init, webserver, daemon
# Storage is PostgreSQL (dagster.yaml reads DAGSTER_PG_*), so the containers share runs,
# schedules and events. The sandbox servers and the tests are not in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    LSS_DATA_DIR=/opt/dagster/data \
    LSS_ROLE_FILE=/tmp/lss-role

RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --no-create-home \
       --shell /usr/sbin/nologin dagster

WORKDIR /opt/dagster/app

# Dependencies first, exactly as locked (hashes checked): this layer changes only with the lock.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the code (.dockerignore keeps out the sandbox, the tests and local state).
COPY pyproject.toml README.md ./
COPY logikal_square_sync ./logikal_square_sync
# --no-deps: every dependency is already in, from the lock; pip checks nothing is missing.
RUN pip install --no-deps . && pip check
COPY workspace.yaml ./
COPY deploy/commands.sh ./deploy/commands.sh
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
RUN mkdir -p "$DAGSTER_HOME/storage" "$LSS_DATA_DIR" \
    && chown -R dagster:dagster "$DAGSTER_HOME" "$LSS_DATA_DIR"

USER dagster
EXPOSE 3000 4000
HEALTHCHECK --interval=30s --timeout=20s --start-period=90s --retries=3 \
    CMD ["/opt/dagster/app/deploy/commands.sh", "healthcheck"]
ENTRYPOINT ["/opt/dagster/app/deploy/commands.sh"]
CMD ["webserver"]

"""What compose.yaml and the image give each application container: its command and its environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLES = ("code-server", "webserver", "daemon")
LOCATION = "logikal_square_sync"
# Variables of the outer environment that would change what the processes do.
_OWN_PREFIXES = ("DAGSTER_", "LSS_", "SQUARE_", "LOGIKAL_", "SMTP_", "ALERT_")
_OWN_NAMES = {"WAREHOUSE_URL", "SLACK_WEBHOOK_URL", "BACKGROUND_SYNC_ENABLED", "SYNC_TIMEZONE"}


def compose_commands() -> dict[str, list[str]]:
    """The argv each application service of compose.yaml runs: the image's entrypoint + `command`."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/dagster/app/deploy/commands.sh"]' in dockerfile
    return {
        name: [str(ROOT / "deploy" / "commands.sh"), *services[name]["command"]] for name in ("init", *ROLES)
    }


def container_environment(home: Path, dagster_database: sa.URL) -> dict[str, str]:
    """A container's environment before its service's own variables: this process's, without anything
    that would change what the processes do, with Dagster's home and its storage on `dagster_database`."""
    outer = {k: v for k, v in os.environ.items() if not (k.startswith(_OWN_PREFIXES) or k in _OWN_NAMES)}
    return {
        **outer,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": dagster_database.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(dagster_database.port or 5432),
        "DAGSTER_PG_USER": dagster_database.username or "postgres",
        "DAGSTER_PG_PASSWORD": dagster_database.password or "",
        "DAGSTER_PG_DB": dagster_database.database or "",
    }

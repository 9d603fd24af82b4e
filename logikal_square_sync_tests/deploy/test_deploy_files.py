"""The deployment files agree with each other and with the code (no container engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from logikal_square_sync.alerts.resource import ENV_VARS as ALERT_ENV_VARS
from logikal_square_sync.policies import OVERRIDE_ENV
from logikal_square_sync_sandbox.demo import write_local_instance_yaml

ROOT = Path(__file__).resolve().parents[2]
LOCATION = "logikal_square_sync"
_READS = re.compile(r"(?:environ\.get|environ\[|getenv|EnvVar(?:\.int)?|env_or)\(\s*\"([A-Z][A-Z0-9_]+)\"")


def _variables_read() -> set[str]:
    """Every environment variable the production code, dagster.yaml, workspace.yaml and the commands read."""
    found: set[str] = set(ALERT_ENV_VARS.values()) | {OVERRIDE_ENV}
    package = ROOT / "logikal_square_sync"
    for path in package.rglob("*.py"):
        found |= set(_READS.findall(path.read_text()))
    for name in ("dagster.yaml", "workspace.yaml"):
        found |= set(re.findall(r"env:\s*([A-Z][A-Z0-9_]+)", (ROOT / name).read_text()))
    found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "deploy" / "commands.sh").read_text()))
    found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "compose.yaml").read_text()))
    return found - {"TMPDIR", "BASH_SOURCE"}


def test_env_example_names_every_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    variables = _variables_read()
    assert {"WAREHOUSE_URL", "SQUARE_ACCESS_TOKEN", "DAGSTER_PG_PASSWORD", "LSS_POLICIES_FILE"} <= variables
    missing = sorted(name for name in variables if not re.search(rf"\b{name}\b", text))
    assert missing == []
    # docs/configuration.md is the reference of every variable (the README links it).
    reference = (ROOT / "docs" / "configuration.md").read_text()
    assert [name for name in sorted(variables) if f"`{name}`" not in reference] == []


def test_compose_runs_the_entrypoint_roles_and_publishes_the_ui_on_loopback_only() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "init", "code-server", "webserver", "daemon"} <= set(services)
    for role in ("init", "code-server", "webserver", "daemon"):
        assert services[role]["command"] == [role]
    assert services["webserver"]["ports"] == ["127.0.0.1:${DAGSTER_WEBSERVER_PUBLISH_PORT:-3000}:3000"]
    # The ERP's HTTP API: its own role, on the host's loopback too, after the webserver it calls.
    assert services["api"]["command"] == ["api"]
    assert services["api"]["ports"] == ["127.0.0.1:${LSS_API_PUBLISH_PORT:-8080}:8080"]
    assert services["api"]["depends_on"] == {"webserver": {"condition": "service_healthy"}}
    assert "ports" not in services["code-server"] and "ports" not in services["postgres"]
    assert set(compose["volumes"]) == {"postgres-data", "dagster-storage"}


def test_the_image_runs_as_a_user_from_the_lock_with_a_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER dagster$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and 'ENTRYPOINT ["/opt/dagster/app/deploy/commands.sh"]' in dockerfile
    # The dependency layer comes before the code, and installs exactly what is locked.
    assert dockerfile.index("requirements.lock") < dockerfile.index("COPY logikal_square_sync")
    assert "--require-hashes" in dockerfile
    # The build context lets in the product package alone: never the sandbox package or the tests.
    let_in = [line for line in (ROOT / ".dockerignore").read_text().split() if line.startswith("!")]
    assert "!logikal_square_sync/" in let_in
    assert not [line for line in let_in if "sandbox" in line or "tests" in line], let_in
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^dagster-k8s==", lock, re.M) and "aiosmtpd" not in lock and "pytest" not in lock


def test_one_location_name_everywhere() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["location_name"] == LOCATION
    assert f'code_location_name = "{LOCATION}"' in (ROOT / "pyproject.toml").read_text()
    assert '--location-name "$location"' in (ROOT / "deploy" / "commands.sh").read_text()
    assert f"location={LOCATION}\n" in (ROOT / "deploy" / "commands.sh").read_text()
    helm = yaml.safe_load((ROOT / "deploy" / "helm-values.yaml").read_text())
    assert [s["name"] for s in helm["dagsterWebserver"]["workspace"]["servers"]] == [LOCATION]
    erp = (ROOT / "docs" / "logikal.md").read_text()
    names = set(re.findall(r'"repositoryLocationName": "([^"]+)"', erp))
    assert names == {LOCATION}


def test_helm_values_carry_the_queue_pools_and_monitoring_of_dagster_yaml() -> None:
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    helm = yaml.safe_load((ROOT / "deploy" / "helm-values.yaml").read_text())
    runs, pools = instance["concurrency"]["runs"], instance["concurrency"]["pools"]
    assert helm["concurrency"]["runs"]["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert helm["concurrency"]["runs"]["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert helm["concurrency"]["pools"]["defaultLimit"] == pools["default_limit"]
    queued = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["dequeueIntervalSeconds"] == instance["run_queue"]["dequeue_interval_seconds"]
    monitoring, ours = helm["dagsterDaemon"]["runMonitoring"], instance["run_monitoring"]
    assert monitoring["freeSlotsAfterRunEndSeconds"] == ours["free_slots_after_run_end_seconds"]
    assert monitoring["pollIntervalSeconds"] == ours["poll_interval_seconds"]
    assert monitoring["maxResumeRunAttempts"] == ours["max_resume_run_attempts"]
    deadline = helm["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["jobSpecConfig"]
    assert deadline["activeDeadlineSeconds"] == ours["max_runtime_seconds"]
    assert helm["runLauncher"]["type"] == "K8sRunLauncher" and helm["postgresql"]["enabled"] is False
    retries = instance["run_retries"]
    assert helm["dagsterDaemon"]["runRetries"] == {
        "enabled": retries["enabled"],
        "maxRetries": retries["max_retries"],
    }
    logs = instance["python_logs"]
    assert helm["pythonLogs"] == {
        "pythonLogLevel": logs["python_log_level"],
        "managedPythonLoggers": logs["managed_python_loggers"],
    }


def test_the_local_instance_is_the_same_file_without_storage(tmp_path: Path) -> None:
    production = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    local = yaml.safe_load(write_local_instance_yaml(tmp_path).read_text())
    assert "storage" in production and "storage" not in local
    assert local == {key: value for key, value in production.items() if key != "storage"}

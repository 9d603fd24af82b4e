"""Every non-public Dagster name the code uses still exists, and no new one slips in unnoticed.

Dagster promises nothing for a name under a private module (`dagster._core...`), a name starting
with `_`, or a `DagsterInstance` member it does not mark public: an upgrade may move or drop any
of them, and the code would then fail only when it reaches that line. The scan reads the product
package (and the definitions snapshot helper) by AST, so a new use is found without editing this
file: it must resolve in the installed Dagster, and it must be one of `KNOWN` below, each with
the reason no public API serves.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._annotations import is_public

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [
    *sorted((ROOT / "logikal_square_sync").rglob("*.py")),
    ROOT / "logikal_square_sync_tests" / "definitions_snapshot.py",
]
INSTANCE = "DagsterInstance"

# The non-public names in use, by file, and why no public API serves (Dagster 1.13).
KNOWN: dict[str, set[str]] = {
    # The freshness daemon's records (the UI's badges) and the two policy types behind
    # dg.FreshnessPolicy.cron / .time_window: Dagster exports only the base class and no reader of
    # the states it records. The deadline's first tick must fall where the daemon puts it: Dagster's
    # own cron iterator (its daylight-saving rules), which it does not export.
    "logikal_square_sync/alerts/freshness.py": {
        "dagster._core.definitions.freshness.CronFreshnessPolicy",
        "dagster._core.definitions.freshness.FreshnessState",
        "dagster._core.definitions.freshness.FreshnessStateRecord",
        "dagster._core.definitions.freshness.TimeWindowFreshnessPolicy",
        "dagster._utils.schedules.cron_string_iterator",
    },
    "logikal_square_sync/alerts/stale_sensor.py": {"DagsterInstance.get_freshness_state_records"},
    # The window a cron policy's lower bound must fit in, as Dagster checks it: not exported.
    "logikal_square_sync/orchestration/freshness_policies.py": {
        "dagster._utils.schedules.get_smallest_cron_interval"
    },
    # Whether the daemon retries failed runs at all (run_retries of dagster.yaml): no public reader.
    "logikal_square_sync/alerts/retry_decision.py": {"DagsterInstance.run_retries_enabled"},
    # Latest check executions, completed or not: no public reader.
    "logikal_square_sync/alerts/check_states.py": {"DagsterInstance.event_log_storage"},
    # The type of a failure event's error (a type hint only): not exported.
    "logikal_square_sync/alerts/messages.py": {"dagster._utils.error.SerializableErrorInfo"},
    # A run's events of one kind (planned materializations, step failures): the public fetchers
    # read by asset or by run status, not by run.
    "logikal_square_sync/alerts/run_sensor.py": {"DagsterInstance.get_records_for_run"},
    # Which instance the process runs on (production or SQLite): not exported.
    "logikal_square_sync/common/production.py": {"dagster._core.instance.ref.InstanceRef"},
    # A run launcher's health check: the result types, the code server's gRPC client and requests,
    # the tag holding its address, the error of an unreachable server, the launcher's instance data
    # and the CANCELING report. Dagster exports the DefaultRunLauncher it extends, none of these.
    "logikal_square_sync/instance/run_launcher.py": {
        "DagsterInstance.report_run_canceling",
        "dagster._core.errors.DagsterUserCodeUnreachableError",
        "dagster._core.launcher.CheckRunHealthResult",
        "dagster._core.launcher.WorkerStatus",
        "dagster._core.storage.tags.GRPC_INFO_TAG",
        "dagster._grpc.client.DagsterGrpcClient",
        "dagster._grpc.types.CanCancelExecutionRequest",
        "dagster._grpc.types.CanCancelExecutionResult",
        "dagster._grpc.types.CancelExecutionRequest",
        "dagster._grpc.types.CancelExecutionResult",
        "dagster._serdes.ConfigurableClassData",
    },
    # Whether the storage has global concurrency (pools): no public property.
    "logikal_square_sync/interfaces/api/new_projects.py": {"DagsterInstance.event_log_storage"},
    "logikal_square_sync/logikal/resource.py": {"DagsterInstance.event_log_storage"},
    # The pool logikal_sessions: its limit and slot claims live in the event log storage only.
    "logikal_square_sync/logikal/session_budget.py": {"DagsterInstance.event_log_storage"},
    # The session bank's slots in the same pool, freed by the run that takes its token.
    "logikal_square_sync/logikal/session_bank.py": {"DagsterInstance.event_log_storage"},
    "logikal_square_sync/interfaces/api/session_bank.py": {"DagsterInstance.event_log_storage"},
    # The runs still going (the public run reader takes no status filter).
    "logikal_square_sync/logikal/sensors.py": {"DagsterInstance.get_runs"},
    # The history purge keeps a run that holds an asset's latest event: finding those needs the
    # run's partitions, its planned materializations and its check evaluations, none public.
    "logikal_square_sync/maintenance/latest_events.py": {
        "DagsterInstance.get_asset_partitions_for_run",
        "DagsterInstance.get_latest_asset_check_evaluation_record",
        "DagsterInstance.get_latest_planned_materialization_info",
        "DagsterInstance.get_records_for_run",
    },
    # A purged run's compute logs: DagsterInstance.delete_run leaves them, and only the compute log
    # manager deletes them.
    "logikal_square_sync/maintenance/purge.py": {"DagsterInstance.compute_log_manager"},
    # The snapshot names the policy types (see alerts/freshness.py).
    "logikal_square_sync_tests/definitions_snapshot.py": {
        "dagster._core.definitions.freshness.CronFreshnessPolicy",
        "dagster._core.definitions.freshness.TimeWindowFreshnessPolicy",
    },
}


@dataclass(frozen=True)
class Use:
    """One non-public Dagster name (`module.name`, or `DagsterInstance.member`) at a place."""

    name: str
    where: str

    def resolves(self) -> bool:
        """Whether the installed Dagster has it: the longest importable module, then attributes."""
        if self.name.startswith(f"{INSTANCE}."):
            return hasattr(dg.DagsterInstance, self.name.removeprefix(f"{INSTANCE}."))
        parts = self.name.split(".")
        for split in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                if not hasattr(found, attribute):
                    return False
                found = getattr(found, attribute)
            return True
        return False


def _is_dagster(module: str) -> bool:
    root = module.split(".")[0]
    return root == "dagster" or root.startswith("dagster_")


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_instance_members() -> set[str]:
    members = (name for name in dir(dg.DagsterInstance) if not name.startswith("__"))
    return {name for name in members if not is_public(getattr(dg.DagsterInstance, name))}


def _dotted(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *parts]
    return None


def _receiver_is_an_instance(node: ast.expr) -> bool:
    """`instance`, `context.instance`, `self._instance`: what the code names a Dagster instance."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name.lower().endswith("instance")


def uses(source: str, where: str, instance_members: set[str]) -> Iterator[Use]:
    """The non-public Dagster names in one module's source."""
    tree = ast.parse(source)
    # What each imported name stands for: `import dagster as dg` binds dg to dagster,
    # `import dagster._core.launcher` binds dagster.
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _is_dagster(alias.name):
                    continue
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
                if any(_private(part) for part in alias.name.split(".")):
                    yield Use(alias.name, f"{where}:{node.lineno}")
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _is_dagster(node.module)
        ):
            private_module = any(_private(part) for part in node.module.split("."))
            for alias in node.names:
                if private_module or _private(alias.name):
                    yield Use(f"{node.module}.{alias.name}", f"{where}:{node.lineno}")
    attributes = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute)]
    # A chain such as dg._core.errors is read whole, from its outermost attribute.
    inner = {id(node.value) for node in attributes if isinstance(node.value, ast.Attribute)}
    for node in attributes:
        if _receiver_is_an_instance(node.value) and node.attr in instance_members:
            yield Use(f"{INSTANCE}.{node.attr}", f"{where}:{node.lineno}")
        dotted = _dotted(node)
        if id(node) in inner or not dotted or dotted[0] not in aliases:
            continue
        if any(_private(part) for part in dotted[1:]):
            yield Use(".".join([aliases[dotted[0]], *dotted[1:]]), f"{where}:{node.lineno}")


def _found() -> list[Use]:
    members = _private_instance_members()
    found: list[Use] = []
    for path in SCANNED:
        where = path.relative_to(ROOT).as_posix()
        found.extend(uses(path.read_text(), where, members))
    return found


FOUND = _found()


def test_the_scan_finds_every_kind_of_non_public_name() -> None:
    source = "\n".join(
        [
            "import dagster as dg",
            "import dagster._core.launcher",
            "from dagster._utils.schedules import cron_string_iterator",
            "from dagster import _check",
            "dg._core.errors",
            "context.instance.get_runs(limit=1)",
            "dg.AssetKey('a'); instance.get_run_records(); dagster._core.launcher.WorkerStatus",
        ]
    )
    found = {use.name for use in uses(source, "example.py", _private_instance_members())}
    assert found == {
        "dagster._core.launcher",
        "dagster._utils.schedules.cron_string_iterator",
        "dagster._check",
        "dagster._core.errors",
        "dagster._core.launcher.WorkerStatus",
        "DagsterInstance.get_runs",
    }


def test_a_moved_name_does_not_resolve() -> None:
    assert Use("dagster._core.launcher.WorkerStatus", "example.py:1").resolves()
    assert not Use("dagster._core.launcher.NoSuchName", "example.py:1").resolves()
    assert not Use("dagster._no_such_module.WorkerStatus", "example.py:1").resolves()
    assert not Use("DagsterInstance.no_such_method", "example.py:1").resolves()


@pytest.mark.parametrize("use", FOUND, ids=lambda use: f"{use.name}@{use.where}")
def test_each_non_public_dagster_name_still_resolves(use: Use) -> None:
    assert use.resolves(), (
        f"{use.where} uses `{use.name}`, which Dagster {dg.__version__} no longer has: Dagster moved or "
        "removed this non-public name. Use the public API that replaced it if there is one "
        "(`dg.<name>`, a public DagsterInstance method), else its new place, and update KNOWN in "
        "logikal_square_sync_tests/test_dagster_private_names.py."
    )


def test_only_the_known_non_public_dagster_names_are_used() -> None:
    by_file: defaultdict[str, set[str]] = defaultdict(set)
    places: defaultdict[str, list[str]] = defaultdict(list)
    for use in FOUND:
        by_file[use.where.rpartition(":")[0]].add(use.name)
        places[use.name].append(use.where)
    new = {file: sorted(names - KNOWN.get(file, set())) for file, names in by_file.items()}
    new = {file: names for file, names in new.items() if names}
    assert not new, (
        "Non-public Dagster names in new places: "
        + "; ".join(
            f"{name} at {', '.join(w for w in places[name] if w.startswith(file + ':'))}"
            for file, names in sorted(new.items())
            for name in names
        )
        + ". Use a public API (`dg.<name>`, a public DagsterInstance method) where Dagster has one; "
        "else add the name to KNOWN with the reason."
    )
    gone = {file: sorted(names - by_file.get(file, set())) for file, names in KNOWN.items()}
    gone = {file: names for file, names in gone.items() if names}
    assert not gone, f"KNOWN lists names no longer used (remove them): {gone}"

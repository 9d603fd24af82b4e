"""What the product's modules may import, read from their source with `ast` (nothing is imported).

The image has no sandbox package, and each source's `engine/` package (client, syncs, store, ...)
knows no Dagster: the Dagster-facing modules beside it (assets, checks, jobs, ...) call into the
engine, never the other way round, so a third source has one pattern to follow.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "logikal_square_sync"


def _modules() -> dict[str, Path]:
    """Every module of the product package by its dotted name (a package by its `__init__.py`)."""
    modules = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The modules `name` imports (relative imports resolved; `from a import b` also as `a.b`)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return found


def _is_dagster(module: str) -> bool:
    top = module.split(".")[0]
    return top == "dagster" or top.startswith("dagster_")


def _loaded_with(module: str) -> set[str]:
    """The package's own modules that importing `module` runs: itself and its parent packages."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & MODULES.keys()


def _engine_modules() -> list[str]:
    return sorted(
        name
        for name, path in MODULES.items()
        if "engine" in path.relative_to(ROOT / PACKAGE).parts[:-1]  # not warehouse/engine.py
    )


def test_every_source_has_an_engine_package() -> None:
    engines = {name.split(".")[1] for name in _engine_modules()}
    assert {"logikal", "square"} <= engines


def test_no_engine_module_imports_dagster() -> None:
    importing = {
        name: found for name in _engine_modules() if (found := sorted(filter(_is_dagster, _imports(name))))
    }
    assert importing == {}


def test_the_engines_reach_dagster_through_no_module_of_the_package() -> None:
    """Transitively: an engine importing a Dagster-facing module (assets, resource, ...) is caught too."""
    offending: dict[str, list[str]] = {}
    for engine_module in _engine_modules():
        came_from: dict[str, str | None] = {engine_module: None}
        queue = deque([engine_module])
        while queue:
            name = queue.popleft()
            if name != engine_module and any(map(_is_dagster, _imports(name))):
                chain = [name]
                while (parent := came_from[chain[-1]]) is not None:
                    chain.append(parent)
                offending[engine_module] = chain[::-1]
                continue
            for imported in _imports(name):
                for module in _loaded_with(imported):
                    if module not in came_from:
                        came_from[module] = name
                        queue.append(module)
    assert offending == {}


def test_the_product_package_imports_nothing_of_the_sandbox() -> None:
    """The image has no sandbox package: one import of it would break production at load."""
    importing = sorted(
        name
        for name in MODULES
        if any(module.split(".")[0] == "logikal_square_sync_sandbox" for module in _imports(name))
    )
    assert importing == []

"""What the product's modules may import, read from their source with `ast` (nothing is imported).

The image has no sandbox package, and each source's `engine/` package (client, syncs, store, ...)
knows no Dagster: the Dagster-facing modules beside it (assets, checks, jobs, ...) call into the
engine, never the other way round, so a third source has one pattern to follow. No module of the
package reaches itself through its imports (those under `if TYPE_CHECKING:` included), and the
LogiKal engine's layers (client, store, walk, syncs) import only the layers before them.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
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


def _import_statements(name: str) -> Iterator[tuple[str, list[str]]]:
    """Each import of `name`, wherever it stands: the module (relative imports resolved), the names taken.

    `import a.b` takes no names; `from a import b, c` takes `b` and `c` from `a`.
    """
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            yield module, [alias.name for alias in node.names]


def _imports(name: str) -> set[str]:
    """The modules `name` imports (`from a import b` also as `a.b`)."""
    found: set[str] = set()
    for module, names in _import_statements(name):
        found |= {module} | {f"{module}.{taken}" for taken in names}
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


def _import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports, wherever the import stands.

    Imports under `if TYPE_CHECKING:` and inside functions count: each one is a dependency a reader
    has to follow, and a cycle through them is a cycle of the design, only hidden from the
    interpreter. `from a import b` is an edge to the module `a.b` when that is one, else to `a`;
    the parent packages an import runs on the way are no edge (every submodule would loop
    through a package that re-exports it).
    """
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        targets: set[str] = set()
        for module, names in _import_statements(name):
            submodules = {f"{module}.{taken}" for taken in names} & MODULES.keys()
            targets |= submodules if len(submodules) == len(names) and names else {module} | submodules
        graph[name] = (targets & MODULES.keys()) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of `graph` with more than one module, each as a cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative: the import graph is deep enough to strain the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_a_cycle_through(component, graph) for component in components]


def _a_cycle_through(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """One cycle within `component`, from its first module back to it (the shortest, found breadth-first)."""
    first = min(component)
    came_from: dict[str, str] = {}
    queue = deque([first])
    while queue:
        node = queue.popleft()
        for successor in sorted(graph[node] & component):
            if successor == first:
                path = [node]
                while path[-1] != first:
                    path.append(came_from[path[-1]])
                return [first, *reversed(path[:-1]), first]
            if successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    raise AssertionError(f"no cycle within {sorted(component)}")


def test_the_import_graph_builder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_product_package_has_no_import_cycle() -> None:
    """No module reaches itself through the imports, those under TYPE_CHECKING and in functions too."""
    cycles = [" -> ".join(cycle) for cycle in _cycles(_import_graph())]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


LOGIKAL_ENGINE_LAYERS = ["client", "store", "walk", "syncs"]


def test_the_logikal_engine_layers_import_only_the_layers_before_them() -> None:
    engine = f"{PACKAGE}.logikal.engine."
    graph = _import_graph()
    layer = {
        name: LOGIKAL_ENGINE_LAYERS.index(name.removeprefix(engine).split(".")[0])
        for name in MODULES
        if name.startswith(engine)
    }
    upward = sorted(
        f"{name} -> {target}"
        for name in layer
        for target in graph[name]
        if target in layer and layer[target] > layer[name]
    )
    assert upward == []

"""The modules' imports, read from their source: services never import one another, shared code
imports no service, and no module imports itself through others.

Every import counts: at the top, inside a function, or behind ``TYPE_CHECKING`` (a cycle hidden
there is still one that a reader has to hold in mind, and that breaks once someone needs the
name at run time). ``services/cli.py`` and ``services/stack.py`` compose the whole system and
may import anything.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "services"
SERVICES = ("audit", "demo", "registry", "subsidy")


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Each module of ``services`` and the modules of ``services`` it imports."""
    modules = {module_name(path): path for path in SOURCE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from package import module`` imports the module, else a name of the package.
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    imported.add(submodule if submodule in modules else node.module)
        graph[name] = frozenset(imported & modules.keys() - {name})
    return graph


def reachable(graph: dict[str, frozenset[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def cycles() -> list[tuple[str, ...]]:
    """The modules that import themselves through others, grouped with the modules they do it
    through (each group sorted)."""
    graph = import_graph()
    reach = {module: reachable(graph, module) for module in graph}
    return sorted(
        {
            tuple(sorted({module} | {other for other in reach[module] if module in reach[other]}))
            for module in graph
            if module in reach[module]
        }
    )


def service_of(module: str) -> str:
    """``registry`` for ``services.registry.writer``; ``cli`` for ``services.cli``."""
    return module.split(".")[1] if "." in module else ""


def test_the_graph_reads_imports_at_the_top_in_functions_and_for_type_checking() -> None:
    graph = import_graph()

    assert "services.common.money" in graph["services.common.policy.loader"]
    assert "services.stack" in graph["services.cli"]  # inside a function
    assert "services.common.policy.schedule" in graph["services.common.settings"]  # TYPE_CHECKING


def test_no_service_imports_another() -> None:
    crossing = sorted(
        f"{module} imports {imported}"
        for module, imports in import_graph().items()
        for imported in imports
        if service_of(module) in SERVICES
        and service_of(imported) in SERVICES
        and service_of(module) != service_of(imported)
    )

    assert crossing == []


def test_shared_code_imports_no_service() -> None:
    reaching_out = sorted(
        f"{module} imports {imported}"
        for module, imports in import_graph().items()
        if service_of(module) == "common"
        for imported in imports
        if service_of(imported) != "common"
    )

    assert reaching_out == []


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    found = cycles()

    assert found == [], "\n".join(
        f"{module} imports {', '.join(sorted(graph[module] & set(cycle)))}"
        for cycle in found
        for module in cycle
    )

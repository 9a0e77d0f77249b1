"""No import cycle among the modules of core/ and jobs/.

The graph is built from the source (the AST), not by importing: an edge is a module-level import
(including one inside a module-level `try` or `if`), not one inside a function, which runs only
when called, nor one under `if TYPE_CHECKING:`, which never runs. As in import-linter, an edge
goes to the module named (`from a.b import c` to `a.b.c` when that is a module, else to `a.b`),
not to the packages above it: a package's `__init__` that imports its own submodules is no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "jobs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                pending += node.body
            pending += node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                pending += handler.body
        elif isinstance(node, ast.With):
            pending += node.body


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(importer: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that importing `importer` runs directly."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in module_level_imports(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = _absolute(node, importer, path.name == "__init__.py")
            # `from package import module` imports the module; `from module import name` the module.
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            names = [name if name in modules else base for name in submodules]
        targets.update(names)
    return {t for t in targets if t in modules and t != importer}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_graph_sees_module_level_imports_only() -> None:
    tree = ast.parse(
        "import a.b\n"
        "from c import d\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import e\n"
        "try:\n    import f\nexcept ImportError:\n    import g\n"
        "def h():\n    import i\n"
    )
    found = [
        alias.name if isinstance(n, ast.Import) else n.module
        for n in module_level_imports(tree)
        for alias in n.names
    ]
    assert found == ["a.b", "c", "typing", "f", "g"]


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_cycles_are_found(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


def test_no_import_cycle_among_core_and_jobs() -> None:
    graph = import_graph()
    assert "core.pipeline.service" in graph and "jobs.runner" in graph
    assert cycles(graph) == []


def test_the_model_layer_does_not_import_the_pipeline() -> None:
    # core.llm is below core.pipeline: the pipeline calls models, models know nothing of runs.
    graph = import_graph()
    upward = {(m, t) for m, ts in graph.items() if m.startswith("core.llm") for t in ts}
    assert {(m, t) for m, t in upward if t.startswith("core.pipeline")} == set()

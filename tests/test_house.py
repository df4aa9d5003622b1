"""The shape of the house (docs/architecture.md): arrows between top-level packages point one way, the
apps do not reach into each other, the runtime knows nothing of HTTP, and no function outgrows a screen.
Imports made inside functions count as much as those at the top of a module."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "xuetu"
MAX_FUNCTION_LINES = 80


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        yield rel, ast.parse(path.read_text(encoding="utf-8"))


def _imported(rel: Path, node) -> list[str]:
    """Dotted module names (below xuetu) an import statement names."""
    parts = list(rel.with_suffix("").parts)
    package = parts[:-1]
    if isinstance(node, ast.Import):
        return [a.name.removeprefix("xuetu.") for a in node.names if a.name.startswith("xuetu.")]
    if node.level:
        base = package[: len(package) - node.level + 1]
        return [".".join(base + (node.module.split(".") if node.module else []))]
    if node.module and (node.module == "xuetu" or node.module.startswith("xuetu.")):
        below = node.module.removeprefix("xuetu").lstrip(".")
        return [below] if below else [a.name for a in node.names]
    return []


def _edges() -> dict[str, dict[str, set[str]]]:
    """package -> {imported package: files that import it}"""
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for rel, tree in _modules():
        here = rel.parts[0].removesuffix(".py")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported(rel, node):
                    there = name.split(".")[0]
                    if there and there != here:
                        edges[here][there].add(str(rel))
    return edges


def test_no_import_cycle_between_top_level_packages():
    edges = _edges()
    graph = {a: set(b) for a, b in edges.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = sorted({f"{a} <-> {b} ({sorted(edges[a][b])[0]})" for a in graph for b in graph[a] if reaches(b, a)})
    assert not cycles, f"import cycles between packages: {cycles}"


@pytest.mark.parametrize("package, forbidden", [
    ("evaluate", {"serve", "cli"}),
    ("runtime", {"serve", "cli", "evaluate", "train", "rag", "safety", "export"}),
    ("train", {"cli", "serve", "evaluate"}),
    ("engines", {"runtime", "serve", "cli"}),
    ("models", {"engines", "runtime", "serve", "cli"}),
])
def test_lower_layers_do_not_import_the_ones_above(package, forbidden):
    found = {name: files for name, files in _edges()[package].items() if name in forbidden}
    assert not found, f"{package}/ imports {found}"


def test_the_runtime_and_the_model_manager_know_nothing_of_http():
    for rel, tree in _modules():
        if rel.parts[0] != "runtime":
            continue
        names = {n for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])}
        assert not {n for n in names if n.split(".")[0] in ("fastapi", "starlette", "httpx")}, rel


def test_no_function_is_longer_than_a_screen():
    long = [f"{rel}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for rel, tree in _modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def test_no_private_name_is_imported_across_packages():
    found = []
    for rel, tree in _modules():
        here = rel.parts[0].removesuffix(".py")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for name in _imported(rel, node):
                    if name.split(".")[0] != here:
                        found += [f"{rel}: {name}.{a.name}" for a in node.names
                                  if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, found

"""The module import graph of src/cnnlab has no cycles (registration runs one way: a package
imports its registrants; a registry imports none of them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "cnnlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_src_cnnlab_imports_form_no_cycle():
    graph = import_graph()
    assert len(graph) > 80
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_data_package_does_not_import_physics():
    """physics builds on data (its sources register into data's registry, its check of
    data.jet_prep into data's SOURCE_KEY_CHECKS); data imports physics only in data.catalog,
    whose one job is to import every module that registers a dataset source."""
    graph = import_graph()
    into_physics = {m: sorted(t for t in targets if t == "cnnlab.physics" or t.startswith("cnnlab.physics."))
                    for m, targets in graph.items() if m == "cnnlab.data" or m.startswith("cnnlab.data.")}
    assert {m: t for m, t in into_physics.items() if t} == {"cnnlab.data.catalog": ["cnnlab.physics.dataset"]}

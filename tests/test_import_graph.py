"""The packages' import graph has no cycles, function-level (lazy) imports included.

A lazy import that closes a cycle works until someone moves it to the top of the file; the
cycle means a small third module is missing (house style rule 13).
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"bossnet_onnx": REPO / "runtime" / "bossnet_onnx",
            "bossnet_export": REPO / "export" / "bossnet_export"}


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(module: str, path: Path, is_package: bool) -> set[str]:
    """Every in-project module `module` imports anywhere in its file."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            files[_module_name(package, root, path)] = path
    graph = {}
    for module, path in files.items():
        deps = _imports(module, path, path.name == "__init__.py") & files.keys()
        # importing a submodule runs its package's __init__ first; that is not a cycle
        graph[module] = {d for d in deps if d != module and not module.startswith(d + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_is_read():
    graph = import_graph()
    assert "bossnet_onnx.run.stream" in graph
    assert "bossnet_onnx.run.rows" in graph["bossnet_onnx.run.stream"]
    assert "bossnet_onnx.science.member_inputs" in graph["bossnet_onnx.run.rows"]
    assert "bossnet_onnx.readers" in graph["bossnet_onnx.run.stream"]  # a function-level import


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None

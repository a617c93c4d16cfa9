"""The lab's shape (issue 14): no import cycle inside the package, the port range checked before any work,
start errors on stderr, and a running lab owning its state directory."""

from __future__ import annotations

import ast
from pathlib import Path

import certdoctor.lab

LAB_PACKAGE = Path(certdoctor.lab.__file__).parent


# --- 1. no import cycle among the lab's modules ---------------------------------------------------------


def _lab_imports() -> dict[str, set[str]]:
    """Module -> the lab modules it imports, statically: every import statement, TYPE_CHECKING ones too."""
    modules = {p.stem for p in LAB_PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        tree = ast.parse((LAB_PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    if node.module is None:  # from . import a, b
                        targets = [alias.name for alias in node.names]
                    else:  # from .a import x / from .a.b import x
                        targets = [node.module.split(".")[0]]
                elif node.level == 0 and (node.module or "").startswith("certdoctor.lab."):
                    targets = [node.module.split(".")[2]]  # type: ignore[union-attr]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[2] for a in node.names if a.name.startswith("certdoctor.lab.")]
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_lab_modules_import_each_other_without_a_cycle() -> None:
    graph = _lab_imports()
    assert {"pki", "revocation", "servers", "scenarios"} <= set(graph)
    assert "revocation" in graph["pki"]  # the checker does see the lab's imports
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or ())


def test_cycle_checker_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None

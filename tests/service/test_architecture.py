"""The service package reads from its folder list: no import circle, no oversized module, one-way layering."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

REPO = Path(__file__).resolve().parents[2]
SERVICE = REPO / "service"
MAX_LINES = 500


def _module(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions (a lazy import still closes a circle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _graph() -> nx.DiGraph:
    files = {_module(p): p for p in SERVICE.rglob("*.py") if "migrations" not in p.parts}
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for name, path in files.items():
        for target in _imports(path):
            if target in files and target != name:
                g.add_edge(name, target)
    return g


def test_the_service_has_no_import_circle() -> None:
    g = _graph()
    assert g.number_of_nodes() > 30 and g.number_of_edges() > 50  # the graph was read
    cycles = list(nx.simple_cycles(g))
    assert not cycles, cycles[:5]


def test_the_runs_and_plans_never_import_the_api() -> None:
    g = _graph()
    for name in g.nodes:
        if name.startswith(("service.runs", "service.plans", "service.store")):
            api = [t for t in g.successors(name) if t.startswith(("service.api", "service.cli"))]
            assert not api, (name, api)


def test_no_module_is_oversized_without_a_reason() -> None:
    for path in SERVICE.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert "lines" in doc and "because" in doc, f"{path.relative_to(REPO)}: {lines} lines and no reason"

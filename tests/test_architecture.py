"""The package's import graph: every import goes down the stages, and nothing imports in a circle.

Every module of ``playment_datasets`` is parsed with ``ast``; every ``import`` and
``from … import`` at any depth counts — module level, inside functions, and under
``if TYPE_CHECKING:`` — with relative imports resolved. ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``. The implicit import of a
parent package that Python performs before a submodule is not an edge (every
submodule would otherwise "import" its own package).

Stages and layers (see docs/architecture.md): an import may go to a module of the same
stage or of a lower layer; stages of one layer are peers and do not import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

PACKAGE = "playment_datasets"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

#: stage → (layer, module-name prefixes, relative to the package, "" is the package itself)
STAGES: dict[str, tuple[int, tuple[str, ...]]] = {
    "foundation": (0, ("errors", "schema", "_optional", "_version", "_public")),
    "api": (1, ("api",)),
    "normalize": (1, ("normalize",)),
    "emulator": (1, ("emulator",)),
    "dataset": (2, ("dataset",)),
    "registry": (3, ("registry",)),
    "pull": (4, ("pull",)),
    "front": (5, ("", "cli", "__main__")),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    file: str
    line: int
    where: str  # "module level", "in a function" or "under TYPE_CHECKING"

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.file}:{self.line}, {self.where})"


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the package."""
    out: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """``name`` itself when it is a module of the package, else its longest module prefix."""
    known = set(modules)
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> list[Edge]:
    """Every import of ``module`` that names a module of the package, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    rel = module.replace(".", "/") + ("/__init__.py" if is_package else ".py")
    edges: list[Edge] = []

    def add(target_name: str, node: ast.stmt, where: str) -> None:
        target = _resolve(target_name, modules)
        if target is not None and target != module:
            edges.append(Edge(module, target, rel, node.lineno, where))

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            child_where = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                child_where = "in a function" if where == "module level" else where
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, "under TYPE_CHECKING")
                for stmt in child.orelse:
                    visit_stmt(stmt, where)
                continue
            visit_stmt(child, child_where)

    def visit_stmt(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, where)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base, node, where)
        visit(node, where)

    visit(tree, "module level")
    return edges


def import_graph(modules: Mapping[str, Path]) -> list[Edge]:
    return [edge for name, path in modules.items() for edge in imports_of(name, path, modules)]


def stage_of(module: str) -> str:
    rel = module[len(PACKAGE) + 1 :] if module != PACKAGE else ""
    top = rel.split(".")[0]
    for stage, (_, prefixes) in STAGES.items():
        if top in prefixes:
            return stage
    raise AssertionError(
        f"module {module} belongs to no stage; add its folder or name to STAGES in "
        "tests/test_architecture.py and to docs/architecture.md"
    )


def upward_imports(edges: Iterable[Edge]) -> list[Edge]:
    """Edges to another stage that is not on a lower layer."""
    bad = []
    for edge in edges:
        a, b = stage_of(edge.source), stage_of(edge.target)
        if a != b and STAGES[b][0] >= STAGES[a][0]:
            bad.append(edge)
    return bad


def _successors(graph: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    succ = {n: sorted(set(vs)) for n, vs in graph.items()}
    for vs in list(succ.values()):
        for v in vs:
            succ.setdefault(v, [])
    return succ


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (as a closed path ``[a, b, …, a]``) per strongly connected component
    of more than one node."""
    succ = _successors(graph)
    return [_cycle_in(comp, succ) for comp in strongly_connected(graph)]


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node, each sorted (Tarjan's
    algorithm, iterative)."""
    succ = {n: sorted(set(vs)) for n, vs in graph.items()}
    for vs in list(succ.values()):
        for v in vs:
            succ.setdefault(v, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(succ[node]):
                work.append((node, i + 1))
                nxt = succ[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    components.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_in(component: list[str], succ: Mapping[str, list[str]]) -> list[str]:
    """A shortest closed path through the first node of ``component``, inside it."""
    members = set(component)
    start = component[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in succ[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if nxt not in prev:
                    prev[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start} in {component}")  # pragma: no cover


def _describe_cycle(cycle: list[str], edges: Iterable[Edge]) -> str:
    by_pair: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        by_pair.setdefault((edge.source, edge.target), edge)
    steps = [str(by_pair[(a, b)]) for a, b in pairwise(cycle)]
    return " -> ".join(cycle) + "\n    " + "\n    ".join(steps)


# -- the package ---------------------------------------------------------------------
def test_every_module_has_a_stage_and_every_folder_is_a_documented_package() -> None:
    modules = module_files()
    assert len(modules) > 30, sorted(modules)  # the walk found the package
    for name in modules:
        stage_of(name)
    for folder in sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_dir()):
        if folder.name == "__pycache__" or not any(folder.glob("*.py")):
            continue
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder} has modules but no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), (
            f"{init} needs a module docstring saying what the stage owns and may import"
        )


def test_no_import_goes_up_a_layer_or_across_peers() -> None:
    edges = import_graph(module_files())
    bad = upward_imports(edges)
    assert not bad, "imports against the layer rule:\n  " + "\n  ".join(map(str, bad))


def test_no_import_cycle() -> None:
    edges = import_graph(module_files())
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    succ = _successors(graph)
    report = []
    for comp in strongly_connected(graph):
        # A shortest cycle through every member, so each circle shows up by name.
        cycles = {tuple(_cycle_in([m, *sorted(set(comp) - {m})], succ)) for m in comp}
        report.append(f"{len(comp)} modules in one circle: {', '.join(comp)}")
        report += [_describe_cycle(list(c), edges) for c in sorted(cycles, key=len)]
    assert not report, "import cycles:\n  " + "\n  ".join(report)


# -- the checker itself can fail ------------------------------------------------------
def test_find_cycles_reports_a_circle_and_ignores_a_chain() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    two = find_cycles({"x": {"y"}, "y": {"x"}, "p": {"q"}, "q": {"p", "x"}})
    assert sorted(two) == [["p", "q", "p"], ["x", "y", "x"]]


def test_walker_sees_nested_type_checking_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    (pkg / "registry").mkdir(parents=True)
    (pkg / "dataset").mkdir()
    for init in (pkg, pkg / "registry", pkg / "dataset"):
        (init / "__init__.py").write_text('"""doc."""\n')
    (pkg / "errors.py").write_text("")
    (pkg / "registry" / "face.py").write_text("from ..dataset import ds\n")
    (pkg / "dataset" / "ds.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from playment_datasets.registry.face import Registry\n"
        "def load():\n"
        "    from .. import errors\n"
        "    import playment_datasets.registry.face\n"
    )
    edges = import_graph(module_files(pkg))
    got = {(e.source, e.target, e.where) for e in edges}
    assert got == {
        ("playment_datasets.registry.face", "playment_datasets.dataset.ds", "module level"),
        ("playment_datasets.dataset.ds", "playment_datasets.registry.face", "under TYPE_CHECKING"),
        ("playment_datasets.dataset.ds", "playment_datasets.errors", "in a function"),
        ("playment_datasets.dataset.ds", "playment_datasets.registry.face", "in a function"),
    }
    up = upward_imports(edges)
    assert {(e.source, e.target) for e in up} == {
        ("playment_datasets.dataset.ds", "playment_datasets.registry.face")
    }
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    assert find_cycles(graph) == [
        ["playment_datasets.dataset.ds", "playment_datasets.registry.face",
         "playment_datasets.dataset.ds"]
    ]  # fmt: skip

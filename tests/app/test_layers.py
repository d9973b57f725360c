"""The package's layers point one way: a pure core <- the cloud layer and the Kubernetes layer
<- the app. Walks every import in constructs/vllm_doks (module level, inside functions, and
under ``if TYPE_CHECKING:``, which is told apart) with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "constructs" / "vllm_doks"

#: Layer of each module (a dotted prefix matches the module and everything under it; the
#: longest prefix wins). Each layer may import its own and the layers listed after it.
LAYERS: dict[str, str] = {
    # The core: no jsii library, no configuration; facts, arithmetic and checks.
    "vllm_doks.validation": "core",
    "vllm_doks.contracts": "core",
    "vllm_doks.gpu_catalog": "core",
    "vllm_doks.capacity": "core",
    "vllm_doks.model_arch": "core",
    "vllm_doks.handoff": "core",
    "vllm_doks.props": "core",  # the props-or-keywords decorator every construct uses
    "vllm_doks._lazy": "core",
    "vllm_doks._node": "core",
    "vllm_doks.scripts": "core",
    "vllm_doks.cold_start": "core",  # the cold-start budget and the after-apply label
    "vllm_doks.weights": "core",  # pinned revisions, the Spaces source, the load strategy
    "vllm_doks.cloud": "cloud",
    "vllm_doks.cloud.model_bucket": "cloud",  # optional Spaces bucket + read-only key
    "vllm_doks.k8s": "k8s",
    # The app: configuration, its checks and wiring, the serving chart, the CLI, the docs.
    "vllm_doks": "app",  # the package root re-exports both layers
    "vllm_doks.promotion": "app",  # asks the cluster (kubectl) before a promotion is written
    "vllm_doks.k8s.serving_chart": "app",
    "vllm_doks._imports": "k8s",  # generated bindings (see cdk8s.yaml)
}
MAY_IMPORT: dict[str, set[str]] = {
    "core": {"core"},
    "cloud": {"cloud", "core"},
    "k8s": {"k8s", "core"},
    "app": {"app", "cloud", "k8s", "core"},
}

#: Cycles closed only by ``if TYPE_CHECKING:`` imports (no run-time cycle): listed so a new
#: one fails here. ModelDownload is typed by the store that owns it.
TYPE_CHECKING_CYCLES = {("vllm_doks.k8s.model_download", "vllm_doks.k8s.nfs_model_store")}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    where: str  # "module", "function" or "type-checking"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(importer: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = importer.split(".") if is_package else importer.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    # ``from vllm_doks import contracts`` imports the module vllm_doks.contracts.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    found: list[Import] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, "type-checking")
                for stmt in child.orelse:
                    visit_stmt(stmt, where)
                continue
            visit_stmt(child, where)

    def visit_stmt(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(module, path.name == "__init__.py", node):
                if target.split(".")[0] == "vllm_doks" and target != module:
                    found.append(Import(module, target, node.lineno, where))
            return
        inner = (
            "function"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and where == "module"
            else where
        )
        visit(node, inner)

    visit(ast.parse(path.read_text()), "module")
    return found


ALL_IMPORTS = [i for m in MODULES for i in imports_of(m)]


def test_the_walk_sees_every_kind_of_import() -> None:
    """The walker itself: it finds module-level, function-level and TYPE_CHECKING imports (if
    it found none, every test below would pass vacuously)."""
    kinds = {i.where for i in ALL_IMPORTS}
    assert kinds == {"module", "function", "type-checking"}
    assert Import("vllm_doks.k8s.outputs", "vllm_doks.handoff", 5, "module") in ALL_IMPORTS
    assert len(MODULES) > 40


@pytest.mark.parametrize("where", ["module", "function", "type-checking"])
def test_layers_point_one_way(where: str) -> None:
    wrong = [
        f"{i.importer}:{i.line} ({layer_of(i.importer)}) imports {i.target} ({layer_of(i.target)})"
        for i in ALL_IMPORTS
        if i.where == where and layer_of(i.target) not in MAY_IMPORT[layer_of(i.importer)]
    ]
    assert wrong == []


def _cycles(edges: set[tuple[str, str]]) -> set[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _edges(*wheres: str) -> set[tuple[str, str]]:
    # A package imports its own submodules to re-export them; that is not a cycle of layers.
    return {
        (i.importer, i.target)
        for i in ALL_IMPORTS
        if i.where in wheres and not i.target.startswith(i.importer + ".")
    }


def test_no_import_cycle_at_run_time() -> None:
    """No cycle among the imports that run (module level and inside functions)."""
    assert _cycles(_edges("module", "function")) == set()


def test_cycles_through_type_checking_imports_are_the_known_ones() -> None:
    assert _cycles(_edges("module", "function", "type-checking")) == TYPE_CHECKING_CYCLES


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == {("a", "b", "c")}

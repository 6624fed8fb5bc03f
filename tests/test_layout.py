"""The shape of the code (docs/architecture.md): no import circles, the core free of the edges, and each
stage of recovery/ a package that says what it is."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "recovery", "connectors", "ml")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Dotted names an import statement may load: `from a.b import c` may be the module a.b.c."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph() -> dict[str, set[str]]:
    """Module → our modules it imports, anywhere in its body (a function-level import is still a
    dependency); imports only for type checkers are left out, and so is a module's own parent package
    (Python imports it first anyway)."""
    modules = _modules()

    def ours(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for top in ast.parse(path.read_text()).body:
            if _is_type_checking(top):
                continue
            for node in ast.walk(top):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    targets = _imported(name, path, node)
                    if isinstance(node, ast.ImportFrom):  # `from pkg import mod` names mod, else pkg
                        targets = [t for t in targets[:-1] if t in modules] or targets[-1:]
                    deps.update(m for t in targets if (m := ours(t)))
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_graph_sees_imports_at_any_depth() -> None:
    graph = import_graph()
    assert "recovery.consent.privacy" in graph["recovery.intake.carts"]  # module level
    assert "recovery.intake.catalog" in graph["recovery.intake.carts"]  # inside a function
    assert "app.runtime" in graph["app.worker"]  # in setup()
    assert "app.actors" in graph["app.runtime"]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert import_cycles(import_graph()) == []


def test_recovery_imports_neither_app_nor_connectors() -> None:
    offenders = [
        f"{module} imports {dep}"
        for module, deps in import_graph().items()
        if module.split(".")[0] == "recovery"
        for dep in deps
        if dep.split(".")[0] in {"app", "connectors"}
    ]
    assert offenders == []


def test_every_recovery_subpackage_says_what_it_is() -> None:
    packages = sorted(p.parent for p in (ROOT / "recovery").rglob("__init__.py"))
    assert len(packages) >= 9  # the core and its stages
    for package in packages:
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 12, f"{package.relative_to(ROOT)}/__init__.py needs a docstring paragraph"


def test_the_benchmark_harness_is_not_in_the_web_edge() -> None:
    graph = import_graph()
    web = {m for m in graph if m == "app.web" or m.startswith("app.web.")}
    assert web and not any(d.startswith("app.bench") for m in web for d in graph[m])
    assert not (ROOT / "app" / "web" / "bench").exists()

"""No import cycles in harness/.

The graph is read from the source (ast), not by importing. Imports at a module's top level (also
inside a top-level `if`/`try`, but not under `if TYPE_CHECKING:`) run when the module is imported:
only they can make a cycle. Imports inside a function run when it is called; they are counted
apart, and never make a cycle. Importing a package's own parent is no edge: a package is always
being initialised before its submodules run.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ImportGraph:
    modules: dict[str, Path]
    top: dict[str, set[str]] = field(default_factory=dict)  # module-level imports
    deferred: dict[str, set[str]] = field(default_factory=dict)  # function-level imports

    def cycles(self) -> list[list[str]]:
        """Each cycle of module-level imports once, as a path that starts and ends at one module."""
        found: list[list[str]] = []
        seen: set[frozenset[str]] = set()
        state: dict[str, int] = {}  # 1 on the path, 2 done
        path: list[str] = []

        def visit(m: str) -> None:
            state[m] = 1
            path.append(m)
            for dep in sorted(self.top.get(m, ())):
                if state.get(dep) == 1:
                    loop = path[path.index(dep):] + [dep]
                    if frozenset(loop) not in seen:
                        seen.add(frozenset(loop))
                        found.append(loop)
                elif dep not in state:
                    visit(dep)
            path.pop()
            state[m] = 2

        for m in sorted(self.modules):
            if m not in state:
                visit(m)
        return found


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool,
             modules: dict[str, Path]) -> set[str]:
    """The modules of the package an import statement makes run."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = here.split(".") if is_package else here.split(".")[:-1]
        if node.level:
            base = base[:len(base) - (node.level - 1)]
        else:
            base = []
        pkg = ".".join(base + ([node.module] if node.module else []))
        # `from pkg import name`: the submodule pkg.name if there is one, else pkg itself
        names = [f"{pkg}.{a.name}" if f"{pkg}.{a.name}" in modules else pkg for a in node.names]
    out = set()
    for name in names:
        while name and name not in modules:  # `import a.b.c` of a module we do not have
            name = name.rpartition(".")[0]
        if name and not (here == name or here.startswith(name + ".")):
            out.add(name)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _split(body: list[ast.stmt]) -> tuple[list[ast.AST], list[ast.AST]]:
    """(imports run at import time, imports inside functions) of a module body."""
    top: list[ast.AST] = []
    deferred: list[ast.AST] = []
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            top.append(stmt)
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            _, d = _split(stmt.orelse)
            deferred.extend(d)  # never run: not even deferred, but functions under it may import
        elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
            blocks = [stmt.body, getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])]
            blocks += [h.body for h in getattr(stmt, "handlers", [])]
            for block in blocks:
                t, d = _split(block)
                top += t
                deferred += d
        elif isinstance(stmt, ast.ClassDef):
            t, d = _split(stmt.body)  # a class body runs at import time; its methods do not
            top += t
            deferred += d
        else:
            deferred += [n for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return top, deferred


def import_graph(package: Path) -> ImportGraph:
    modules = {_module_name(package, p): p for p in sorted(package.rglob("*.py"))}
    graph = ImportGraph(modules)
    for name, path in modules.items():
        top, deferred = _split(ast.parse(path.read_text(encoding="utf-8")).body)
        is_package = path.name == "__init__.py"
        graph.top[name] = set().union(*(_targets(n, name, is_package, modules) for n in top))
        graph.deferred[name] = set().union(*(_targets(n, name, is_package, modules) for n in deferred))
    return graph


def test_harness_has_no_import_cycle():
    graph = import_graph(ROOT / "harness")
    assert len(graph.modules) > 50 and graph.top["harness.run"]  # it read the package
    cycles = graph.cycles()
    assert not cycles, "import cycles (module level):\n" + "\n".join(" → ".join(c) for c in cycles)


def test_plugins_are_imported_by_the_registries_not_by_their_base_modules():
    graph = import_graph(ROOT / "harness")
    assert "harness.monitor.data_rules" not in graph.top["harness.monitor.monitor"]
    assert "harness.runbook.service_actions" not in graph.top["harness.runbook.actions"]
    assert "harness.faults.database" not in graph.top["harness.faults.base"]
    assert "harness.monitor.monitor" in graph.top["harness.monitor.data_rules"]


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_module_level_cycle_is_found_with_its_path(tmp_path):
    root = _package(tmp_path, {
        "base.py": "X = 1\nfrom . import plugins  # noqa: E402\n",
        "plugins.py": "from .base import X\n",
        "free.py": "from .base import X\n"})
    assert import_graph(root).cycles() == [["pkg.base", "pkg.plugins", "pkg.base"]]


def test_function_level_and_type_checking_imports_make_no_cycle(tmp_path):
    root = _package(tmp_path, {
        "base.py": "from typing import TYPE_CHECKING\n"
                   "if TYPE_CHECKING:\n    from .plugins import Y\n"
                   "def load():\n    from . import plugins\n",
        "plugins.py": "from .base import load\n",
        "sub/__init__.py": "from .inner import Z\n",
        "sub/inner.py": "from . import helper\nZ = 1\n",  # its own package: no edge
        "sub/helper.py": ""})
    graph = import_graph(root)
    assert graph.cycles() == []
    assert graph.deferred["pkg.base"] == {"pkg.plugins"}
    assert graph.top["pkg.base"] == set() and graph.top["pkg.plugins"] == {"pkg.base"}
    assert graph.top["pkg.sub.inner"] == {"pkg.sub.helper"}


def test_an_import_inside_a_top_level_try_or_class_body_counts(tmp_path):
    root = _package(tmp_path, {
        "a.py": "try:\n    from . import b\nexcept ImportError:\n    b = None\n",
        "b.py": "class K:\n    from . import a\n"})
    assert import_graph(root).cycles() == [["pkg.a", "pkg.b", "pkg.a"]]

"""The import graph of the shipped code: layers import downward only, and no module imports itself
back through others (no circle).

The graph is read from the source (AST), imports inside functions included, so a lazy import
cannot hide a dependency; imports under ``if TYPE_CHECKING:`` are annotations only and skipped.
An edge goes to the module named (``from pkg import mod`` → ``pkg.mod`` when ``mod`` is a module);
the implicit import of a parent package is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FLOORS = {
    "preprocess": 0,
    "models": 1, "simulate": 1,
    "data": 2,
    "engine": 3,
    "staging": 4,
    "nar_cls": 5, "explain": 5, "online": 5, "web": 5,
    "inference": 6, "train": 6, "finetune": 6,
}
"""Floor of each shipped package and top-level script. A module may import its own package and any
package on a lower floor; never one on its own floor or above (design contract, docs/design.md)."""


def module_files(root: Path, tops) -> dict[str, Path]:
    """Dotted module name → file, for the packages and top-level scripts named in ``tops``."""
    out = {}
    for top in tops:
        script = root / f"{top}.py"
        if script.is_file():
            out[top] = script
            continue
        for f in sorted((root / top).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skip.update(id(n) for n in ast.walk(stmt))
    return skip


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in one module (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def add(target: str) -> None:
        while target and target not in modules:  # a.b.c where c is a function: the module a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                add(sub if sub in modules else mod)
    return found


def import_graph(root: Path, tops) -> dict[str, set[str]]:
    modules = module_files(root, tops)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def upward(graph: dict[str, set[str]], floors: dict[str, int]) -> list[str]:
    """``a -> b`` edges from a package to another on the same floor or above."""
    bad = []
    for a, targets in sorted(graph.items()):
        top_a = a.split(".")[0]
        for b in sorted(targets):
            top_b = b.split(".")[0]
            if top_a != top_b and floors[top_b] >= floors[top_a]:
                bad.append(f"{a} -> {b}")
    return bad


def test_shipped_code_has_no_circle_and_no_upward_import():
    tops = [t for t in FLOORS if (ROOT / t).is_dir() or (ROOT / f"{t}.py").is_file()]
    graph = import_graph(ROOT, tops)
    assert len(graph) > 100 and "staging.stager" in graph and "models.windows" in graph
    assert "staging.predict" in graph["staging.stager"]  # a function-level import is an edge too
    assert circles(graph) == []
    assert upward(graph, FLOORS) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_checker_finds_a_circle_through_a_lazy_import(tmp_path):
    root = _tree(tmp_path, {
        "staging/__init__.py": "",
        "staging/batch.py": "from .outputs import write\n",
        "staging/outputs.py": "def write():\n    from . import exports\n",
        "staging/exports.py": "from staging.batch import run  # back to the start\n",
        "staging/free.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .batch import x\n",
    })
    graph = import_graph(root, ["staging"])
    assert graph["staging.outputs"] == {"staging.exports"}
    assert graph["staging.free"] == set()  # annotations only
    assert circles(graph) == [["staging.batch", "staging.exports", "staging.outputs"]]


def test_checker_finds_upward_and_same_floor_imports(tmp_path):
    root = _tree(tmp_path, {
        "preprocess/__init__.py": "",
        "preprocess/core.py": "def f():\n    import staging.predict\n",
        "staging/__init__.py": "",
        "staging/predict.py": "import preprocess.core\n",
        "web/__init__.py": "from explain import render\n",
        "explain/__init__.py": "", "explain/render.py": "from staging import predict\n",
    })
    graph = import_graph(root, ["preprocess", "staging", "web", "explain"])
    assert upward(graph, FLOORS) == ["preprocess.core -> staging.predict", "web -> explain.render"]
    assert circles(graph) == [["preprocess.core", "staging.predict"]]


@pytest.mark.parametrize("level, module, expected", [(1, "outputs", "staging.outputs"), (2, "models", "models")])
def test_relative_imports_resolve(tmp_path, level, module, expected):
    root = _tree(tmp_path, {"staging/__init__.py": "", "staging/outputs.py": "", "models/__init__.py": "",
                            "staging/batch.py": f"from {'.' * level}{module} import thing\n"})
    assert import_graph(root, ["staging", "models"])["staging.batch"] == {expected}

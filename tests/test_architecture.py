"""The layout's one-way rule: gendist's imports form no circle, climb no floor, and every module imports alone.

Imports are read from the source (module level, inside functions, and the package ``__init__`` that
importing a submodule of another package runs first); only ``if TYPE_CHECKING:`` blocks are left out.
The floors are those of ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gendist

ROOT = Path(gendist.__file__).parent

# ground floor first; a module may import its own floor's modules (within its package) and lower floors
FLOORS: list[tuple[str, ...]] = [
    ("_checks", "_recipes", "io", "sde"),
    ("transforms", "metrics"),
    ("nn", "samplers", "inference"),
    ("distributions",),
    ("flows", "autoregressive", "diffusion", "ebm", "gan", "data"),
    ("latent", "interop", "bayes"),
    ("config", "testing", "plots"),
    ("cli", "__main__"),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, name: str, is_package: bool) -> list[str]:
    """Every module named by an import statement anywhere in ``tree`` (``from a import b``: ``a`` and ``a.b``)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            found.append(module)
            found.extend(f"{module}.{a.name}" for a in node.names)
        visit(node)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    r"""gendist's import graph: module -> the gendist modules importing it runs (package ``__init__``\ s included)."""
    mods = modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = set()
        for imported in _imported(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                ancestor = ".".join(parts[:i])
                # importing a.b runs a's __init__ first, unless the importer is inside a (already running)
                if ancestor in mods and not (name == ancestor or name.startswith(ancestor + ".")):
                    targets.add(ancestor)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def floor(name: str) -> int:
    parts = name.split(".")
    if len(parts) == 1:
        return len(FLOORS)  # the package itself re-exports everything
    for level, names in enumerate(FLOORS):
        if parts[1] in names:
            return level
    raise AssertionError(f"{name} is on no floor of tests/test_architecture.py (and docs/architecture.md)")


def test_the_walker_sees_a_circle_through_a_package_init(tmp_path):
    pkg = tmp_path / "gendist"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from gendist.a.m import f\n")
    (pkg / "a" / "m.py").write_text("def f():\n    from gendist.b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import gendist.c\n"
                              "from gendist.a import f\n")
    (pkg / "c.py").write_text("")
    global ROOT
    saved, ROOT = ROOT, pkg
    try:
        edges = graph()
    finally:
        ROOT = saved
    assert edges["gendist.b"] == {"gendist.a"}  # the TYPE_CHECKING import is left out
    assert circles(edges) == [["gendist.a", "gendist.a.m", "gendist.b"]]


def test_no_import_circle():
    found = circles(graph())
    assert not found, "import circles in gendist:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_imports_climb_no_floor():
    edges = graph()
    climbs = [f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
              for a in sorted(edges) for b in sorted(edges[a]) if floor(b) > floor(a)]
    assert not climbs, "imports against the floors of docs/architecture.md:\n" + "\n".join(climbs)


# each module imported by a fresh child of one interpreter that holds only third-party packages
_ALONE = r"""
import os, sys, traceback
import numpy, torch, pyro, pyro.distributions, nflows, einops  # third-party only: no gendist module yet
failed = 0
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed += 1
        print("FAILED:", name, flush=True)
sys.exit(1 if failed else 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_first_in_a_fresh_interpreter():
    names = [n for n in modules() if not n.endswith("__main__")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _ALONE, *names], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]


def test_import_gendist_exposes_every_subpackage_and_family_distribution():
    subpackages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"cli"}
    assert subpackages <= set(dir(gendist)), subpackages - set(dir(gendist))
    for name in ("Flow", "Autoregressive", "LatentVariable", "VQVAEDistribution", "Diffusion", "EnergyBased",
                 "Implicit"):
        assert getattr(gendist, name) is getattr(gendist.distributions, name)

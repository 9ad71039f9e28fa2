"""The import graph: the maths imports no sampler, trainer or disk, and no module imports itself in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MATHS = ("adaptation", "maml", "trpo", "policies", "advantages", "curvature", "episodes")


def _modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the installed layout (``metarl.envs`` is ``envs/``)."""
    found: dict[str, Path] = {}
    for prefix, folder in (("metarl", ROOT / "metarl"), ("metarl.envs", ROOT / "envs")):
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The metarl modules ``name`` imports anywhere in its file (functions and type-checking blocks too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            for alias in node.names:
                child = f"{base}.{alias.name}"
                out.add(child if child in modules else base)
    return {m for m in out if m in modules and m != name}


def test_no_module_imports_itself_in_a_circle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if name in done:
            return
        for child in sorted(graph[name]):
            visit(child, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


@pytest.mark.parametrize("module", MATHS)
def test_the_maths_imports_only_the_maths(module: str) -> None:
    """Importing a maths module loads no sampler, trainer, configuration, environment or disk code."""
    code = (
        f"import sys, metarl.{module}\n"
        "print(' '.join(sorted(n for n in sys.modules if n.startswith('metarl.'))))\n"
        "print(' '.join(n for n in ('mujoco', 'gymnasium', 'yaml', 'ray') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.splitlines()
    loaded = set(out[0].split())
    assert loaded <= {f"metarl.{m}" for m in MATHS}, loaded - {f"metarl.{m}" for m in MATHS}
    assert out[1:] in ([], [""]), f"metarl.{module} loads {out[1]}"

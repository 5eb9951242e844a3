"""The package's layers, read from the imports: dependencies point one way, and no cycle.

``core ← analysis ← translate ← {toy, vae, concepts} ← study``, with ``plotting`` on ``core``
only (it draws plain data).  A sub-package may import itself and the layers it stands on,
nothing else; the study's runner does not import its command line.  The cycle finder is tested
on a graph with a cycle put in on purpose, so a layering that let one through would fail here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyro_latent

PACKAGE = Path(pyro_latent.__file__).parent
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())

# What each layer may import besides itself.
ALLOWED = {
    "core": set(),
    "analysis": {"core"},
    "translate": {"core", "analysis"},
    "toy": {"core", "analysis", "translate"},
    "vae": {"core", "analysis", "translate"},
    "concepts": {"core", "analysis", "translate"},
    "plotting": {"core"},
    "study": {"core", "analysis", "translate", "toy", "vae", "concepts", "plotting"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def subpackage_of(module: str) -> str | None:
    """``pyro_latent.<sub>...`` → ``<sub>`` (a sub-package of this package), else ``None``."""
    parts = module.split(".")
    if parts[0] != "pyro_latent" or len(parts) < 2 or parts[1] not in SUBPACKAGES:
        return None
    return parts[1]


def package_graph() -> dict[str, set[str]]:
    """``{sub-package: the other sub-packages its modules import}``, from the source."""
    graph = {name: set() for name in SUBPACKAGES}
    for name in SUBPACKAGES:
        for module in (PACKAGE / name).rglob("*.py"):
            for imported in imported_modules(module):
                target = subpackage_of(imported)
                if target is not None and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle ``[a, b, …, a]`` of ``graph`` (depth-first search), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_scan_sees_every_layer():
    assert set(SUBPACKAGES) == set(ALLOWED), "a new sub-package needs its place in ALLOWED"


def test_the_scan_sees_real_imports():
    # If the scan found nothing, every test below would pass vacuously.
    graph = package_graph()
    assert {"core", "analysis", "translate"} <= graph["study"]
    assert "core" in graph["vae"] and "analysis" in graph["translate"]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package):
    offending = []
    for module in sorted((PACKAGE / package).rglob("*.py")):
        for imported in sorted(imported_modules(module)):
            target = subpackage_of(imported)
            if target not in (None, package) and target not in ALLOWED[package]:
                offending.append(f"{module.relative_to(PACKAGE)} imports {imported}")
    assert not offending, "\n".join(offending)


def test_the_top_level_package_imports_only_core():
    reached = {subpackage_of(m) for m in imported_modules(PACKAGE / "__init__.py")} - {None}
    assert reached <= {"core"}


def test_the_package_graph_has_no_cycle():
    assert find_cycle(package_graph()) is None


def test_a_cycle_put_in_on_purpose_is_found():
    graph = package_graph()
    assert find_cycle(graph) is None
    graph["analysis"] = graph["analysis"] | {"translate"}  # translate → analysis already holds
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"analysis", "translate"} <= set(cycle)
    # ... and the layering rule would have named it too.
    assert "translate" not in ALLOWED["analysis"]


def test_the_cycle_finder_on_small_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_the_runner_does_not_import_the_command_line():
    for name in ("runner.py", "report.py"):
        assert "pyro_latent.study.cli" not in imported_modules(PACKAGE / "study" / name)

"""The package's layers: library sub-packages never reach up into the study's runner."""

import ast
from pathlib import Path

import pytest

import pyro_latent

PACKAGE = Path(pyro_latent.__file__).parent
RUNNER = {"pyro_latent.cli", "pyro_latent.study", "pyro_latent.report"}
SUBPACKAGES = sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


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


def test_the_scan_sees_the_subpackages():
    assert {p.name for p in SUBPACKAGES} >= {"toy", "vae", "concepts", "translate", "plotting"}


@pytest.mark.parametrize("package", SUBPACKAGES, ids=lambda p: p.name)
def test_library_subpackages_do_not_import_the_runner(package):
    for module in sorted(package.rglob("*.py")):
        reached = imported_modules(module) & RUNNER
        assert not reached, f"{module.relative_to(PACKAGE)} imports {sorted(reached)}"


def test_the_runner_does_not_import_the_command_line():
    for name in ("study.py", "report.py"):
        assert "pyro_latent.cli" not in imported_modules(PACKAGE / name)

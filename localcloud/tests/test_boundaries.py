"""localcloud stands alone: it imports only the standard library, itself and what it declares.

It runs any SAM template and knows nothing about the applications built on it, so an import of an
application package (alleycat's, say) is a defect even where that package happens to be installed.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "src" / "localcloud"
# Application packages of the repository localcloud grew up in: named here so the failure says so.
APPLICATION_PACKAGES = frozenset(
    {"alleycat", "leaderboard", "consumers", "producers", "simulator", "streamformat"}
)


def _imports(path: Path) -> set[tuple[str, int]]:
    """Top-level names a module imports (absolute imports, at any depth), with their line numbers."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add((node.args[0].value.split(".")[0], node.lineno))
    return found


def _declared_import_names() -> set[str]:
    """Import names provided by the distributions localcloud's pyproject declares as dependencies."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in project["dependencies"]
    }
    return {
        name
        for name, distributions in packages_distributions().items()
        if any(dist.lower().replace("_", "-") in declared for dist in distributions)
    }


def _modules() -> list[Path]:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50, f"expected localcloud's modules under {PACKAGE}"
    return modules


def test_localcloud_imports_no_application_package():
    offenders = [
        f"{module.relative_to(PROJECT)}:{line} imports {name}"
        for module in _modules()
        for name, line in sorted(_imports(module))
        if name in APPLICATION_PACKAGES
    ]
    assert not offenders, "localcloud must not import application code:\n" + "\n".join(offenders)


def test_localcloud_imports_only_what_it_declares():
    allowed = set(sys.stdlib_module_names) | {"localcloud", "__future__"} | _declared_import_names()
    offenders = [
        f"{module.relative_to(PROJECT)}:{line} imports {name}"
        for module in _modules()
        for name, line in sorted(_imports(module))
        if name not in allowed
    ]
    assert not offenders, (
        "localcloud imports packages its pyproject.toml does not declare (add them to "
        "[project].dependencies, then `make lock`):\n" + "\n".join(offenders)
    )

"""Dependencies: the lock agrees with both pyproject files, and the code imports only what they declare."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The packages the alleycat distribution ships (see [tool.setuptools.packages.find]).
FIRST_PARTY = ("alleycat", "leaderboard", "consumers", "producers", "simulator", "streamformat")


def _uv() -> str:
    """The pinned uv `make setup` installs into .tools, or one on PATH."""
    pinned = ROOT / ".tools" / "bin" / "uv"
    found = str(pinned) if pinned.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: run `make setup` (it installs the pinned uv into .tools/)")
    return found


def test_the_lock_agrees_with_the_pyproject_files():
    # `uv lock --check` re-resolves from the pyproject files and compares with uv.lock without writing.
    done = subprocess.run(
        [_uv(), "lock", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"},
    )
    assert done.returncode == 0, (
        "uv.lock does not match pyproject.toml / localcloud/pyproject.toml: run `make lock` and commit "
        f"uv.lock.\n{done.stderr}"
    )


def _imported_top_level_names(path: Path) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def _declared_import_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in project["dependencies"]
    }
    return {
        name
        for name, distributions in packages_distributions().items()
        if any(dist.lower().replace("_", "-") in declared for dist in distributions)
    }


def test_shipped_code_imports_only_declared_dependencies():
    allowed = set(sys.stdlib_module_names) | set(FIRST_PARTY) | {"__future__"} | _declared_import_names()
    modules = [path for package in FIRST_PARTY for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(modules) > 40
    offenders = [
        f"{module.relative_to(ROOT)}:{line} imports {name}"
        for module in modules
        for name, line in sorted(_imported_top_level_names(module))
        if name not in allowed
    ]
    assert not offenders, (
        "imports of packages pyproject.toml does not declare (add them to [project].dependencies, "
        "then `make lock`):\n" + "\n".join(offenders)
    )

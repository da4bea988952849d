"""Builds one Lambda function's artifact: its own packages and its pinned runtime dependencies.

``sam build`` runs this through ``functions/Makefile`` (``BuildMethod: makefile``) once per function,
with the working directory at (a copy of) the project root and ``ARTIFACTS_DIR`` set to the
function's artifact folder. It:

1. copies the named first-party packages whole (minus the named sub-packages, byte code,
   Markdown and images), so a module moving inside a package needs no change here;
2. installs the function's runtime dependencies (``--dependency``, the names the handler's code
   imports, as in pyproject.toml) and everything they need, at the versions and with the hashes
   that ``uv.lock`` pins: the closure is walked through the lock for the Lambda platform (Linux,
   arm64, CPython 3.12) and installed with ``--no-deps``, so nothing unpinned slips in. What the
   Lambda Python runtime already provides (boto3 and what only it needs) is left out.

Usage::

    python functions/build.py --artifacts DIR --package consumers --package leaderboard \
        --exclude consumers/publisher --exclude leaderboard/api --dependency "pydantic>=2.6"
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The functions' platform (template.yaml: Runtime python3.12, Architectures arm64). uv picks the
# wheels for it, so the build works on any host; only wheels are accepted (nothing is compiled).
PYTHON_VERSION = "3.12"
PYTHON_PLATFORM = "aarch64-manylinux2014"
# Marker environment of that platform, for walking the lock's conditional dependencies.
TARGET_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": f"{PYTHON_VERSION}.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": f"{PYTHON_VERSION}.0",
    "python_version": PYTHON_VERSION,
    "sys_platform": "linux",
}
# The Lambda Python runtime ships boto3 and its dependencies; bundling them would add ~30 MB per
# function. The walk stops at these names, so what only they need (urllib3, dateutil, six, ...)
# stays out too, while anything else that needs those packages still brings them in.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
# Never part of an artifact: byte code (the runtime compiles), documentation and images.
IGNORED_PATTERNS = ("__pycache__", "*.pyc", "*.pyo", "*.md", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.svg")


class BuildError(RuntimeError):
    """The artifact cannot be built as asked."""


@dataclass(frozen=True)
class Pin:
    """One locked distribution to install: its name, version and the hashes of its wheels."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def requirement_line(self) -> str:
        """The pin as a hash-checked requirements.txt entry."""
        hashes = "".join(f" --hash={digest}" for digest in self.hashes)
        return f"{self.name}=={self.version}{hashes}"


def copy_packages(source: Path, artifacts: Path, packages: Iterable[str], excludes: Iterable[str]) -> None:
    """Copies each top-level package whole into ``artifacts``, leaving out the excluded sub-packages."""
    excluded = {(source / item).resolve() for item in excludes}
    for missing in sorted(str(path) for path in excluded if not path.is_dir()):
        raise BuildError(f"excluded folder {missing} does not exist (was it moved?)")
    ignore_files = shutil.ignore_patterns(*IGNORED_PATTERNS)

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(ignore_files(folder, names))
        return skipped | {name for name in names if (Path(folder) / name).resolve() in excluded}

    for package in packages:
        origin = source / package
        if not (origin / "__init__.py").is_file():
            raise BuildError(f"{origin} is not a Python package (was it moved or renamed?)")
        shutil.copytree(origin, artifacts / package, ignore=ignore, dirs_exist_ok=True)


def _applies(entry: Mapping[str, Any]) -> bool:
    marker = entry.get("marker")
    return marker is None or Marker(marker).evaluate(dict(TARGET_ENVIRONMENT))


def _wheel_hashes(package: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(wheel["hash"] for wheel in package.get("wheels", ()) if "hash" in wheel)


def locked_pins(lock_path: Path, roots: Iterable[Requirement]) -> list[Pin]:
    """The lock's pins for ``roots`` and everything they need on the Lambda platform.

    Walks ``uv.lock`` (extras included, markers evaluated for the Lambda platform) and stops at
    what the runtime provides. Fails when a name is missing from the lock or is locked at more than
    one version with nothing to tell them apart, rather than guess.
    """
    lock = tomllib.loads(lock_path.read_text())
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for package in lock.get("package", ()):
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)

    def resolve(name: str, version: str | None) -> Mapping[str, Any]:
        candidates = by_name.get(name, [])
        if version is not None:
            candidates = [package for package in candidates if package["version"] == version]
        if len(candidates) != 1:
            found = ", ".join(package["version"] for package in by_name.get(name, [])) or "none"
            raise BuildError(f"uv.lock has no single pin for {name} (versions: {found}); run `make lock`")
        return candidates[0]

    pins: dict[str, Pin] = {}
    queue: list[tuple[str, str | None, frozenset[str]]] = [
        (canonicalize_name(req.name), None, frozenset(req.extras))
        for req in roots
        if req.marker is None or req.marker.evaluate(dict(TARGET_ENVIRONMENT))
    ]
    visited: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, version, extras = queue.pop()
        if name in RUNTIME_PROVIDED or (name, extras) in visited:
            continue
        visited.add((name, extras))
        package = resolve(name, version)
        if "registry" not in package.get("source", {}):
            raise BuildError(f"{name} does not come from a package index; a function cannot bundle it")
        pins[name] = Pin(name, package["version"], _wheel_hashes(package))
        entries = list(package.get("dependencies", ()))
        optional = package.get("optional-dependencies", {})
        for extra in sorted(extras):
            if extra not in optional:
                raise BuildError(f"uv.lock has no extra {extra!r} for {name}")
            entries.extend(optional[extra])
        for entry in entries:
            if _applies(entry):
                queue.append(
                    (
                        canonicalize_name(entry["name"]),
                        entry.get("version"),
                        frozenset(entry.get("extra", ())),
                    )
                )
    return sorted(pins.values(), key=lambda pin: pin.name)


def find_uv(project: Path) -> str:
    """The project's pinned uv (``make setup`` installs it), else ``$UV``, else uv on PATH."""
    for candidate in (os.environ.get("UV"), str(project / ".tools" / "bin" / "uv"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BuildError("uv not found: run `make setup` (it installs the pinned uv into .tools/) or set UV")


def install_pins(uv: str, pins: Iterable[Pin], artifacts: Path) -> None:
    """Installs exactly ``pins`` (no resolution, hashes checked) into ``artifacts``."""
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("".join(pin.requirement_line() + "\n" for pin in pins))
        command = [
            uv, "pip", "install", "--quiet", "--no-config",
            "--target", str(artifacts),
            "--python-platform", PYTHON_PLATFORM,
            "--python-version", PYTHON_VERSION,
            "--only-binary", ":all:",
            "--no-deps", "--require-hashes",
            "--requirements", str(requirements),
        ]  # fmt: skip
        subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: builds one artifact; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=os.environ.get("ARTIFACTS_DIR"))
    parser.add_argument("--source", type=Path, default=Path.cwd(), help="project root to copy from")
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--package", action="append", required=True, dest="packages")
    parser.add_argument("--exclude", action="append", default=[], dest="excludes")
    parser.add_argument(
        "--dependency", action="append", default=[], dest="dependencies", help="a requirement, e.g. orjson"
    )
    parser.add_argument("--lock", default="uv.lock", help="relative to --source")
    args = parser.parse_args(argv)
    if args.artifacts is None:
        parser.error("--artifacts (or ARTIFACTS_DIR) is required")
    try:
        args.artifacts.mkdir(parents=True, exist_ok=True)
        copy_packages(args.source, args.artifacts, args.packages, args.excludes)
        roots = [Requirement(text) for text in args.dependencies]
        pins = locked_pins(args.source / args.lock, roots)
        install_pins(find_uv(args.project), pins, args.artifacts)
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"functions/build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

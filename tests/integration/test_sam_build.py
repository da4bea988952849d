"""`sam build` makes one lean artifact per function, and a stack deployed from them runs them.

Each artifact must hold its handler, every first-party module the handler imports (walked
statically over the artifact) and every third-party package those import (or the Lambda runtime
provides it), pinned as uv.lock pins them and built for the functions' platform (arm64, CPython
3.12) — and nothing else: no tests, tools or documentation, under a size limit. The handler must
also really import from the artifact's own code (with this machine's copies of the native
packages, which is what localcloud runs too).

One `sam build` (a few seconds once uv's cache has the wheels) serves every test here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcloud.templates import load_template

from localcloud import LocalCloud

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SAM = Path(sys.executable).with_name("sam")
# Lambda allows 250 MB unzipped; the artifacts are ~13 MB today. 30 MB leaves room to grow while
# catching what would blow it up (the SDK bundled again, a tree of tools or data copied in).
MAX_ARTIFACT_BYTES = 30 * 1024 * 1024
# Folders of the project that no function needs.
FORBIDDEN_FOLDERS = {"tests", "bench", "localcloud", "docs", "simulator", "alleycat", "functions"}
# The Lambda Python runtime provides the AWS SDK and what it needs; artifacts must not bundle them.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
# Wheels the functions can load: pure Python, or built for Linux arm64 and CPython 3.12.
LAMBDA_TAG = re.compile(r"^(py\d+|cp3\d+)-(none|abi3|cp312)-(any|(many|musl)?linux\w*_aarch64(\.\S+)?)$")
FIRST_PARTY = {path.parent.name for path in ROOT.glob("*/__init__.py")}


def _lambda_functions(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → handler module of every function in a template."""
    return {
        logical_id: resource["Properties"]["Handler"].rpartition(".")[0]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built into a temporary folder (the project's own .aws-sam is left alone)."""
    target = tmp_path_factory.mktemp("sam-build") / "build"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    completed = subprocess.run(
        [str(SAM), "build", "--template-file", str(ROOT / "template.yaml"), "--build-dir", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return target


@pytest.fixture(scope="module")
def functions(build_dir: Path) -> dict[str, str]:
    built = _lambda_functions(load_template(build_dir / "template.yaml"))
    assert built == _lambda_functions(load_template(ROOT / "template.yaml"))
    return built


def _module_file(artifact: Path, module: str) -> Path | None:
    base = artifact.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run (those under ``if TYPE_CHECKING:`` do not)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _imported_names(artifact: Path, module: str, source: Path) -> Iterator[str]:
    """Dotted names a module imports, relative imports resolved, ``from p import m`` submodules included."""
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    for node in _runtime_imports(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*parent, base] if base else parent)
        yield base
        for alias in node.names:
            if _module_file(artifact, f"{base}.{alias.name}") is not None:
                yield f"{base}.{alias.name}"


def import_closure(artifact: Path, handler: str) -> tuple[set[str], list[str], dict[str, str]]:
    """Walks the handler's first-party imports inside the artifact.

    Returns the first-party modules found, the imports that do not resolve inside the artifact
    (``importer -> name``), and each third-party top-level name with a module that imports it.
    """
    found: set[str] = set()
    missing: list[str] = []
    third_party: dict[str, str] = {}
    queue = [("<handler>", handler)]
    while queue:
        importer, name = queue.pop()
        top = name.split(".")[0]
        if top not in FIRST_PARTY:
            if top not in sys.stdlib_module_names and top != "__future__":
                third_party.setdefault(top, importer)
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c imports a and a.b first
            module = ".".join(parts[:depth])
            if module in found:
                continue
            source = _module_file(artifact, module)
            if source is None:
                missing.append(f"{importer} -> {module}")
                break
            found.add(module)
            queue.extend((module, imported) for imported in _imported_names(artifact, module, source))
    return found, missing, third_party


def _provides(artifact: Path, top: str) -> bool:
    return (
        (artifact / top).is_dir()
        or (artifact / f"{top}.py").is_file()
        or any(artifact.glob(f"{top}.*.so"))
        or top in RUNTIME_PROVIDED
    )


def test_every_function_is_built(functions: dict[str, str], build_dir: Path) -> None:
    assert set(functions) == {
        "AggregatorFunction",
        "PublisherFunction",
        "RaceCloserFunction",
        "ApiFunction",
        "CursorRotationFunction",
    }
    for logical_id, handler in functions.items():
        assert _module_file(build_dir / logical_id, handler) is not None, f"{logical_id} lacks {handler}"


def test_handlers_import_only_what_their_artifact_holds(functions: dict[str, str], build_dir: Path) -> None:
    for logical_id, handler in functions.items():
        artifact = build_dir / logical_id
        _found, missing, third_party = import_closure(artifact, handler)
        assert not missing, f"{logical_id}: first-party imports missing from the artifact: {missing}"
        absent = {top: importer for top, importer in third_party.items() if not _provides(artifact, top)}
        assert not absent, f"{logical_id}: third-party packages not in the artifact (imported by): {absent}"


def test_artifacts_hold_nothing_else(functions: dict[str, str], build_dir: Path) -> None:
    for logical_id in functions:
        artifact = build_dir / logical_id
        top_level = {entry.name for entry in artifact.iterdir()}
        assert not top_level & FORBIDDEN_FOLDERS, f"{logical_id} ships {top_level & FORBIDDEN_FOLDERS}"
        assert not top_level & RUNTIME_PROVIDED, f"{logical_id} bundles {top_level & RUNTIME_PROVIDED}"
        stray = [
            str(path.relative_to(artifact))
            for path in artifact.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES or path.name == "__pycache__"
        ]
        assert not stray, f"{logical_id} ships {stray[:10]}"


def test_artifacts_stay_under_the_size_limit(functions: dict[str, str], build_dir: Path) -> None:
    sizes = {}
    for logical_id in functions:
        files = [path for path in (build_dir / logical_id).rglob("*") if path.is_file()]
        sizes[logical_id] = (sum(path.stat().st_size for path in files), len(files))
    print(json.dumps(sizes))  # (bytes, files) per function, for the record
    too_big = {name: size for name, (size, _) in sizes.items() if size > MAX_ARTIFACT_BYTES}
    assert not too_big, f"over {MAX_ARTIFACT_BYTES} bytes unzipped: {too_big}"


def test_bundled_distributions_are_the_locked_lambda_wheels(
    functions: dict[str, str], build_dir: Path
) -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}
    for package in lock["package"]:
        locked.setdefault(re.sub(r"[-_.]+", "-", package["name"]).lower(), set()).add(package["version"])
    for logical_id in functions:
        for dist_info in (build_dir / logical_id).glob("*.dist-info"):
            name, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
            assert version in locked.get(re.sub(r"[-_.]+", "-", name).lower(), set()), (
                f"{logical_id}: {dist_info.name} is not what uv.lock pins"
            )
            tags = [
                line.split(":", 1)[1].strip()
                for line in (dist_info / "WHEEL").read_text().splitlines()
                if line.startswith("Tag:")
            ]
            assert tags and all(LAMBDA_TAG.match(tag) for tag in tags), f"{dist_info.name}: {tags}"


def test_handlers_import_from_their_artifact(functions: dict[str, str], build_dir: Path) -> None:
    # The artifact's native wheels are for arm64 / CPython 3.12, so this machine's site-packages
    # comes first for third-party packages; first-party code can only come from the artifact
    # (-S: no .pth files, so the project's editable install is not on the path).
    site_packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    probe = "import importlib, sys; print(importlib.import_module(sys.argv[1]).__file__)"
    for logical_id, handler in functions.items():
        artifact = build_dir / logical_id
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([*sorted(site_packages), str(artifact)]),
            "AWS_DEFAULT_REGION": "us-east-1",
            "TABLE_NAME": "races",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        completed = subprocess.run(
            [sys.executable, "-S", "-c", probe, handler],
            cwd=build_dir,  # not the artifact: -c puts the working folder first on sys.path
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, f"{logical_id}: {completed.stderr[-2000:]}"
        assert Path(completed.stdout.strip()).is_relative_to(artifact)


# --- localcloud runs what sam build made ---------------------------------------------------------

MARKER_TITLE = "Alleycat Leaderboard API (built artifact)"


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def test_a_stack_deployed_from_the_build_runs_the_artifacts(
    build_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given a copy of the build whose API artifact carries a marker the source tree does not
    copy = tmp_path_factory.mktemp("marked") / "build"
    shutil.copytree(build_dir, copy, symlinks=True)
    app = copy / "ApiFunction" / "leaderboard" / "api" / "app.py"
    source = app.read_text()
    assert 'API_TITLE = "Alleycat Leaderboard API"' in source
    app.write_text(source.replace('API_TITLE = "Alleycat Leaderboard API"', f'API_TITLE = "{MARKER_TITLE}"'))

    # When localcloud deploys the built template
    with LocalCloud(state_dir=tmp_path_factory.mktemp("state")) as cloud:
        deployed = cloud.deploy(copy / "template.yaml", "alleycat")
        for source_of in deployed.functions.values():
            assert source_of.code_dir is not None and source_of.code_dir.is_relative_to(copy)

        # Then the API serves the artifact's code, and the other functions start from theirs
        api_url = cloud.api_gateway.local_url(deployed.outputs["ApiUrl"])
        assert _get(f"{api_url}/openapi.json")["info"]["title"] == MARKER_TITLE
        names = {source_of.logical_id: name for name, source_of in deployed.functions.items()}
        closed = cloud.invoke(
            names["RaceCloserFunction"], {"source": "aws.events", "detail-type": "Scheduled Event"}
        )
        assert closed.ok, closed
        published = cloud.invoke(names["PublisherFunction"], {"Records": []})
        assert published.ok, published

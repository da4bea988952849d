"""The import boundaries between the packages, checked on the source (nothing is imported).

The domain core must stay reusable unchanged by any consumer (a Lambda handler today, a KCL record
processor later): no AWS SDK, no Lambda event shapes, no HTTP, no wire formats. Producers and
consumers share the record formats through ``streamformat`` and never import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOMAIN_FORBIDDEN = (
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "http",
    "producers",
    "consumers",
    "streamformat",
    "leaderboard.adapters",
    "leaderboard.api",
)


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a file, TYPE_CHECKING blocks included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            # `from leaderboard import api` imports leaderboard.api
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Every import under ``package`` (a folder below the root) of a module in ``forbidden``."""
    found: dict[tuple[Path, int], str] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imports_of(path):
            banned = next((b for b in forbidden if module == b or module.startswith(b + ".")), None)
            if banned is not None and (path, line) not in found:  # one report per import statement
                found[path, line] = f"{path.relative_to(ROOT)}:{line} imports {module} (forbidden: {banned})"
    return list(found.values())


def test_the_domain_core_imports_no_aws_sdk_event_shapes_http_or_adapters() -> None:
    found = violations("leaderboard/domain", DOMAIN_FORBIDDEN)
    assert not found, "leaderboard/domain must hold only domain logic:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("producers", ("consumers",)),
        ("consumers", ("producers",)),
        ("streamformat", ("producers", "consumers", "leaderboard")),
    ],
)
def test_producers_and_consumers_share_only_the_stream_format(
    package: str, forbidden: tuple[str, ...]
) -> None:
    found = violations(package, forbidden)
    assert not found, f"{package} must not import {', '.join(forbidden)}:\n" + "\n".join(found)


def test_producers_use_nothing_of_leaderboard_but_the_retry_policy() -> None:
    found = [v for v in violations("producers", ("leaderboard",)) if " imports leaderboard.retry" not in v]
    assert not found, "producers may import only leaderboard.retry:\n" + "\n".join(found)


@pytest.mark.parametrize("page", ["alleycat/dashboard.py", "alleycat/status.py"])
def test_the_local_pages_do_not_import_the_stack_that_builds_them(page: str) -> None:
    found = [
        f"{page}:{line} imports {module}"
        for line, module in imports_of(ROOT / page)
        if module.startswith(("alleycat.stack", "alleycat.status", "alleycat.dashboard"))
    ]
    assert not found, (
        "the stack imports its pages, not the other way round (see alleycat/ports.py):\n" + "\n".join(found)
    )

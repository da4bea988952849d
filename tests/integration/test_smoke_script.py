"""The deploy pipeline's smoke test (scripts/smoke_test.py), run as CI runs it, against a real local
stack: it passes on a healthy stack, and fails with a clear message and a non-zero status when the
stack is not there or its standings never arrive.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The same `alleycat up` process fixture as the CLI end-to-end test (one local stack per module).
from tests.integration.test_cli_e2e import stack  # noqa: F401 - a pytest fixture, used by name

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SMOKE = [sys.executable, str(ROOT / "scripts" / "smoke_test.py")]


def _smoke(local_json: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SMOKE, "--local-config", str(local_json), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_passes_against_a_healthy_stack(stack: dict[str, Any]) -> None:  # noqa: F811
    run = _smoke(
        stack["info_path"],
        *("--racers", "12", "--duration", "8", "--speed", "4", "--timeout", "120", "--poll-interval", "0.5"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED" in run.stdout
    assert "final with 12 racers" in run.stdout


def test_an_unknown_stack_fails_with_its_name(stack: dict[str, Any]) -> None:  # noqa: F811
    run = _smoke(stack["info_path"], "--stack-name", "alleycat-no-such-stack", timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "smoke test FAILED" in run.stderr
    assert "alleycat-no-such-stack" in run.stderr and "does not exist" in run.stderr
    assert "Traceback" not in run.stderr


def test_standings_that_never_arrive_fail_at_the_timeout(stack: dict[str, Any]) -> None:  # noqa: F811
    # The race is sent, but the API the script polls answers nothing: it must give up on time and
    # say what it was waiting for and what the API said.
    run = _smoke(
        stack["info_path"],
        *("--racers", "2", "--duration", "2", "--speed", "4", "--timeout", "3"),
        *("--api-url", "http://127.0.0.1:9/v1"),
        timeout=60,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "no final standings within 3 s" in run.stderr
    assert "cannot reach http://127.0.0.1:9/v1/races" in run.stderr

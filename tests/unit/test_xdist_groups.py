"""The suite's heavy modules start one local stack per module and rely on ``xdist_group`` marks to
keep their tests on one worker (``pytest -n 2 --dist loadgroup``, see the Makefile). When pytest and
pytest-xdist disagree about node ids, the marks are silently ignored: each worker then starts its own
stack and the suite takes far longer. This runs a small suite the way the Makefile runs ours."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SAMPLE = """
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("one-stack")


@pytest.mark.parametrize("index", range(6))
def test_grouped(index: int) -> None:
    out = Path(os.environ["GROUP_LOG"]) / f"grouped-{index}"
    out.write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_an_xdist_group_runs_on_one_worker(tmp_path: Path) -> None:
    """Six tests of one group, two workers: every test reports the same worker."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    log = tmp_path / "log"
    log.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "xdist",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        check=False,
        cwd=tmp_path,
        # Only xdist: the other installed plugins (locust, schemathesis...) would only slow it down.
        env={"GROUP_LOG": str(log), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers: dict[str, list[str]] = defaultdict(list)
    for entry in log.iterdir():
        workers[entry.read_text()].append(entry.name)
    assert sum(map(len, workers.values())) == 6
    assert len(workers) == 1, (
        f"the group was split across workers {dict(workers)}: pytest and pytest-xdist disagree about node "
        "ids (see the pytest pin in pyproject.toml)"
    )

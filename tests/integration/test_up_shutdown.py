"""`alleycat up | tee log` and Ctrl-C: the whole process group gets SIGINT, so stdout's reader is gone
while `up` shuts down. Shutdown still saves state, removes local.json and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_with_stdout_reader_gone_saves_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "alleycat", "up", "--home", str(home)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("w"),
        start_new_session=True,  # its own process group, as a shell pipeline's
    )
    assert process.stdout is not None
    try:
        info_path = home / "local.json"
        deadline = time.monotonic() + 120
        while not info_path.exists():
            assert process.poll() is None, (tmp_path / "stderr.log").read_text()
            assert time.monotonic() < deadline, "alleycat up did not write local.json in time"
            time.sleep(0.2)
        # Read what it printed up to "ready", then the reader dies (as tee on Ctrl-C) before SIGINT.
        os.set_blocking(process.stdout.fileno(), False)
        printed = b""
        while b"ready" not in printed:
            assert time.monotonic() < deadline, printed.decode()
            printed += process.stdout.read() or b""
            time.sleep(0.1)
        process.stdout.close()
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=60)
        assert code == 0, (tmp_path / "stderr.log").read_text()
        assert (home / "state" / "state.json").is_file()
        assert not info_path.exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

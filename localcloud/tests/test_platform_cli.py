"""``localcloud up``: starts, deploys, reports, runs until SIGTERM, stops cleanly with state saved."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from localcloud.cli import build_parser, main

TEMPLATE = Path(__file__).parent / "templates" / "platform_basic" / "template.yaml"


def test_help_explains_the_up_command(capsys):
    with pytest.raises(SystemExit):
        main(["up", "--help"])

    text = capsys.readouterr().out
    for option in ("--stack-name", "--state-dir", "--port", "--parameter", "--no-state"):
        assert option in text


def test_parameters_are_key_value_pairs():
    args = build_parser().parse_args(["up", "t.yaml", "--parameter", "A=1", "--parameter", "B=x=y"])

    assert args.parameter == [("A", "1"), ("B", "x=y")]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "t.yaml", "--parameter", "novalue"])


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_up_deploys_reports_and_stops_on_sigterm(tmp_path, capsys):
    # Given `localcloud up` running in the foreground
    info_file = tmp_path / "local.json"
    state_dir = tmp_path / "state"

    def stop_when_ready() -> None:
        deadline = time.monotonic() + 45
        while not info_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # When it receives SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_when_ready, daemon=True)
    stopper.start()
    code = main(
        [
            "up",
            str(TEMPLATE),
            "--stack-name",
            "cli",
            "--port",
            "0",
            "--state-dir",
            str(state_dir),
            "--parameter",
            "Greeting=ahoy",
            "--info-file",
            str(info_file),
        ]
    )
    stopper.join()

    # Then it exited cleanly, having printed the endpoint, outputs and skipped resources
    assert code == 0
    out = capsys.readouterr().out
    info = json.loads(info_file.read_text())
    assert info["endpoint_url"] in out
    assert "TableName" in out and "ServerlessRestApi" in out
    assert set(info["stacks"]["cli"]["outputs"]) >= {"TableName", "QueueUrl", "FunctionName"}
    # And its state was saved for the next run
    assert (state_dir / "moto-state.pickle").exists()


def test_missing_template_is_an_error(tmp_path, capsys):
    assert main(["up", str(tmp_path / "nope.yaml"), "--no-state"]) == 2

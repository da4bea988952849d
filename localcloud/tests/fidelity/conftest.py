"""Prints the fidelity figure as the run's very last line when fidelity scenarios were replayed."""

from __future__ import annotations

from typing import Any

from fidelity import scoreboard


def pytest_unconfigure(config: Any) -> None:
    """Write ``fidelity: N of M recorded scenarios match`` after pytest's own last line."""
    line = scoreboard.summary_line()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line is not None and reporter is not None:
        reporter.write_line(line)

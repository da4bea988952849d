"""`alleycat race` with no stack running starts one; what it prints must stay true afterwards: the
stack keeps its state and keeps serving until Ctrl-C, and says so."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from alleycat import cli, stack


def test_race_keeps_its_stack_serving_and_its_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    events: list[str] = []
    made: list[dict[str, Any]] = []

    class FakeStack:
        def __init__(self, templates: list[Path], *, home: Path, persist: bool) -> None:
            made.append({"home": home, "persist": persist})
            self.home = home

        def start(self) -> dict[str, Any]:
            events.append("start")
            return {}

        def stop(self) -> None:
            events.append("stop")

    def fake_race(args: Any, target: Any) -> int:
        events.append("race")
        return 0

    @contextmanager
    def ctrl_c_at_once() -> Iterator[threading.Event]:
        events.append("serve until Ctrl-C")
        stop = threading.Event()
        stop.set()
        yield stop

    monkeypatch.setattr(stack, "LocalStack", FakeStack)
    monkeypatch.setattr(cli, "_local_running", lambda config: False)
    monkeypatch.setattr(cli, "_default_template", lambda: Path("template.yaml"))
    monkeypatch.setattr(cli, "_target", lambda args: None)
    monkeypatch.setattr(cli, "_race", fake_race)
    monkeypatch.setattr(cli, "_stop_signals", ctrl_c_at_once)
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=200))

    assert cli.main(["race", "--racers", "1", "--local-config", str(tmp_path / "local.json")]) == 0

    assert made == [{"home": tmp_path, "persist": True}]
    assert events == ["start", "race", "serve until Ctrl-C", "stop"]
    out = buffer.getvalue()
    assert "keeps serving the URLs above until Ctrl-C" in out
    assert str(tmp_path / "state") in out

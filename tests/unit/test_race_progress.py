"""`alleycat race`'s progress when stdout is not a terminal: plain lines, never a blank log."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from alleycat.standings import RaceBoard
from alleycat.view import RaceProgress, plural, progress_line, race_screen
from simulator import RaceSpec, RunnerStats

SPEC = RaceSpec(race_id=6209025200, class_id=1, racers=3, duration=60)


def _stats(second: int) -> RunnerStats:
    return RunnerStats(
        race_second=second,
        duration=60,
        races=1,
        messages_generated=3 * second,
        messages_total=180,
        sent=3 * second,
        failed=0,
        retried=1,
        elapsed_seconds=float(second),
        messages_per_second=3.0,
    )


def _board(updates: int) -> RaceBoard:
    row = {"rank": 1, "racerId": 68, "name": "Chloe O.", "totalOutput": 4645.26}
    return RaceBoard(SPEC.race_id, {"status": "live", "standings": [row]}, updates=updates)


def test_a_piped_race_prints_a_plain_line_every_interval() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=60)
    assert not console.is_terminal
    now = [0.0]
    with RaceProgress(console, target="local", interval=5.0, clock=lambda: now[0]) as progress:
        for tick in range(41):  # 10 s at the race loop's 4 redraws a second
            now[0] = tick * 0.25
            progress.show([SPEC], _stats(int(now[0])), 3.0, {SPEC.race_id: _board(1 + tick // 20)})
    lines = out.getvalue().splitlines()
    # At 0 s, 5 s and 10 s; nothing else (no screen redraws, no escape codes).
    assert len(lines) == 3, lines
    assert "\x1b" not in out.getvalue()
    assert lines[0].startswith("race clock 00:00 / 01:00 · sent 0 · 3 msg/s · retries 1 · failed 0")
    assert "race 6209025200 live (1 update) leader 68 Chloe O. 4,645.26" in lines[0]
    assert lines[-1].startswith("race clock 00:10 / 01:00 · sent 30")
    assert "(3 updates)" in lines[-1]


def test_the_latest_state_is_printed_when_the_race_ends_between_lines() -> None:
    out = io.StringIO()
    now = [0.0]
    with RaceProgress(Console(file=out, force_terminal=False), target="local", clock=lambda: now[0]) as p:
        p.show([SPEC], _stats(0), 0.0, {})
        now[0] = 1.0
        p.show([SPEC], _stats(1), 3.0, {})
    lines = out.getvalue().splitlines()
    assert [line[:24] for line in lines] == ["race clock 00:00 / 01:00", "race clock 00:01 / 01:00"]
    assert "race 6209025200 waiting (0 updates)" in lines[0]


def test_a_terminal_gets_the_live_screen_not_lines() -> None:
    out = io.StringIO()
    with RaceProgress(Console(file=out, force_terminal=True, width=120), target="local") as progress:
        progress.show([SPEC], _stats(3), 3.0, {SPEC.race_id: _board(1)})
    assert "Alleycat · 1 race(s) · local" in out.getvalue()
    assert "1 update over MQTT" in out.getvalue()


def test_plural() -> None:
    assert [plural(n, "message") for n in (0, 1, 2, 1000)] == [
        "0 messages",
        "1 message",
        "2 messages",
        "1,000 messages",
    ]


def _screen(stats: RunnerStats, rate: float, board: RaceBoard) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(race_screen([SPEC], stats, rate, {SPEC.race_id: board}, target="local"))
    return console.export_text()


def test_the_race_title_uses_the_panels_width() -> None:
    board = RaceBoard(SPEC.race_id, {"status": "live", "standings": []}, updates=6, lags=[1.6])
    text = _screen(_stats(37), 3.0, board)
    title = (
        f"race {SPEC.race_id} · class 1 · live · 6 updates over MQTT · last update 1.6 s behind the racers"
    )
    assert any(title in line for line in text.splitlines()), text


def test_after_the_race_the_send_rate_is_the_runs_average_not_the_last_recent_rate() -> None:
    finished = replace(_stats(60), messages_per_second=2.9, finished=True)
    # The recent rate the race loop last computed (1,001/s) would stay on screen for good.
    assert "avg msg/s 3 " in _screen(finished, 1001.0, _board(12))
    assert "1,001" not in _screen(finished, 1001.0, _board(12))
    assert "msg/s 1,001" in _screen(_stats(30), 1001.0, _board(6))
    assert "· 3 avg msg/s ·" in progress_line([SPEC], finished, 1001.0, {SPEC.race_id: _board(12)})

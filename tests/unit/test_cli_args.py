"""Every numeric argument of ``alleycat`` is checked by the parser: a one-line error and exit 2."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from alleycat import cli
from alleycat.cli import build_parser

BAD = [
    ["race", "--speed", "0"],
    ["race", "--speed", "-2"],
    ["race", "--speed", "nan"],
    ["race", "--speed", "inf"],
    ["race", "--speed", "fast"],
    ["race", "--record-ttl", "-1"],
    ["race", "--record-ttl", "0"],
    ["race", "--final-timeout", "-1"],
    ["race", "--final-timeout", "nan"],
    ["race", "--racers", "0"],
    ["race", "--racers", "10001"],
    ["race", "--duration", "0"],
    ["race", "--seed", "x"],
    ["race", "--classes", "1,1"],
    ["race", "--classes", ",".join(str(i) for i in range(101))],
    ["up", "--port", "-1"],
    ["up", "--port", "65536"],
    ["up", "--kcl-workers", "0"],
    ["leaderboard", "0"],
    ["leaderboard", "x"],
    ["leaderboard", "1", "--limit", "0"],
    ["leaderboard", "1", "--limit", "1001"],
    ["races", "--limit", "0"],
    ["races", "--limit", "1001"],
    ["races", "--class", "-1"],
    ["dashboard", "--port", "-1"],
    ["plan", "--racers", "0"],
    ["plan", "--races-per-hour", "0"],
    ["plan", "--races-per-hour", "nan"],
    ["plan", "--viewers", "-1"],
    ["plan", "--window", "0"],
    ["plan", "--duration", "0"],
    ["plan", "--top-n", "0"],
]


@pytest.mark.parametrize("argv", BAD, ids=" ".join)
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err
    error_lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, stderr
    assert f"argument {argv[-2] if argv[-2].startswith('-') else 'RACE_ID'}" in error_lines[0]
    assert "Traceback" not in stderr


def test_good_numbers_parse() -> None:
    args = build_parser().parse_args(
        ["race", "--speed", "2.5", "--record-ttl", "5", "--final-timeout", "0", "--racers", "10000"]
    )
    assert (args.speed, args.record_ttl, args.final_timeout, args.racers) == (2.5, 5.0, 0.0, 10000)
    assert build_parser().parse_args(["up", "--port", "0"]).port == 0
    assert build_parser().parse_args(["races", "--limit", "1000", "--class", "0"]).limit == 1000


def test_help_shows_no_rest_markup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":class:" not in out
    assert "--stack-name/--region/--profile" in out


def test_an_empty_race_list_prints_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Api:
        def __init__(self, url: str) -> None:
            pass

        def races(self, class_id: int | None, limit: int) -> dict[str, object]:
            return {"races": [], "nextCursor": None}

    class Target:
        api_url = "http://127.0.0.1:1/v1"

    monkeypatch.setattr(cli, "LeaderboardApi", Api)
    monkeypatch.setattr(cli, "_target", lambda args: Target())
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=200))
    assert cli.main(["races", "--class", "2"]) == 0
    out = buffer.getvalue()
    assert "no races of class 2 yet: start one with `alleycat race`" in out
    assert "raceId" not in out
